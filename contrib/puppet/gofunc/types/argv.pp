# @summary A command as an argument vector: run without a shell, the
# program first (['systemctl', 'restart', 'nginx']).
type Gofunc::Argv = Array[String, 1]
