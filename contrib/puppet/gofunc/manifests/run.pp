# @summary Runs a command on the gofunc minions a spec matches, on each
# host only when it needs it.
#
# The command is an argv (no shell) run through `func SPEC run`
# (command.run) from the node applying the catalog, with the overlord
# identity in `$dir`. `unless` and `onlyif` are argv commands run the
# same way on every targeted host first: the command runs only on the
# hosts where `unless` exits non-zero and `onlyif` exits 0. Without
# either it runs on every host at every run (as exec does), unless
# `refreshonly` is set, in which case it runs when the resource is
# notified.
#
# The change names the hosts the command ran on. The resource fails
# naming the hosts where the command failed (exit status and first line
# of stderr) and those that could not be checked (unreachable, denied,
# timed out), after running on every other host that needed it.
#
# @example Install a configuration file where it is missing
#   gofunc::run { 'motd':
#     spec    => 'web*',
#     command => ['cp', '/srv/gold/motd', '/etc/motd'],
#     unless  => ['cmp', '-s', '/srv/gold/motd', '/etc/motd'],
#     dir     => '/etc/puppetlabs/gofunc',
#   }
#
# @param spec Target spec: globs separated by ';', @group, @group:glob.
# @param command The command: [program, arg, ...].
# @param unless Run the command only on the hosts where this exits non-zero.
# @param onlyif Run the command only on the hosts where this exits 0.
# @param refreshonly Run only when notified.
# @param dir The overlord identity directory (default: func's, $GOFUNC_DIR or ~/.gofunc).
# @param certmaster HOST:PORT of the certmaster to learn the minions from.
# @param timeout How long each host may take (func's default: 30s).
# @param forks Hosts called at once (func's default: 256).
# @param broker nats:// URLs of a gofunc broker, for func builds that have it.
# @param func The path of the func binary (default: found on PATH).
define gofunc::run (
  String[1] $spec,
  Gofunc::Argv $command,
  Optional[Gofunc::Argv] $unless = undef,
  Optional[Gofunc::Argv] $onlyif = undef,
  Boolean $refreshonly = false,
  Optional[String[1]] $dir = undef,
  Optional[String[1]] $certmaster = undef,
  Optional[Gofunc::Timeout] $timeout = undef,
  Optional[Integer[1]] $forks = undef,
  Optional[String[1]] $broker = undef,
  Optional[String[1]] $func = undef,
) {
  gofunc_run { $title:
    spec        => $spec,
    command     => $command,
    unless      => $unless,
    onlyif      => $onlyif,
    refreshonly => $refreshonly,
    dir         => $dir,
    certmaster  => $certmaster,
    timeout     => $timeout,
    forks       => $forks,
    broker      => $broker,
    func        => $func,
  }
}
