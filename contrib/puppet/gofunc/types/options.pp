# @summary The options of gofunc::call.
#
# Every key is optional:
# - `dir`: the overlord identity directory (func --dir; default
#   $GOFUNC_DIR, else ~/.gofunc of the user running the compilation).
# - `certmaster`: HOST:PORT of the certmaster to learn the minions and
#   the CRL from (func --certmaster; remembered in the directory).
# - `timeout`: how long each host may take, a Go duration such as
#   '10s' or '2m', or whole seconds (func --timeout; default 30s).
# - `forks`: hosts called at once (func --forks; default 256).
# - `broker`: nats:// URLs of a gofunc broker (func --broker), for func
#   builds that have the broker transport.
# - `exclude`: a spec, or specs, of minions to leave out.
# - `where`: a facts filter such as 'os=debian,cpu_count>=4'.
# - `fail_on_error`: fail the compilation when any host failed
#   (default true); false returns the failures in the result.
# - `func`: the path of the func binary (default: found on PATH).
type Gofunc::Options = Struct[{
  Optional[dir]           => String[1],
  Optional[certmaster]    => String[1],
  Optional[timeout]       => Gofunc::Timeout,
  Optional[forks]         => Integer[1],
  Optional[broker]        => String[1],
  Optional[exclude]       => Variant[String[1], Array[String[1]]],
  Optional[where]         => String[1],
  Optional[fail_on_error] => Boolean,
  Optional[func]          => String[1],
}]
