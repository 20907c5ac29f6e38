# frozen_string_literal: true

Puppet::Type.newtype(:gofunc_run) do
  @doc = <<-DOC
    @summary Runs a command (an argv, no shell) on the gofunc minions a
    spec matches, on each host only when that host needs it.

    Use it through the gofunc::run defined type. `unless` and `onlyif`
    are argv commands run on every targeted host first (through `func
    run`, as the command is): the command then runs only on the hosts
    where `unless` exited non-zero and `onlyif` exited 0, so a second
    run changes nothing once `unless` holds everywhere. The change
    names the hosts the command ran on; the resource fails naming the
    hosts where the command failed (with their exit status and first
    line of stderr) or that could not be checked (unreachable, denied,
    ...), after running on every other host that needed it.
  DOC

  newparam(:name, namevar: true) do
    desc 'A name for the resource.'
  end

  newparam(:spec) do
    desc "Target spec: globs separated by ';', @group, @group:glob."
    validate do |value|
      raise ArgumentError, 'spec must be a non-empty String' unless value.is_a?(String) && !value.strip.empty?
    end
  end

  argv = proc do
    validate do |value|
      unless value.is_a?(Array) && !value.empty? && value.all? { |a| a.is_a?(String) }
        raise ArgumentError, "#{name} must be a non-empty Array of Strings (an argv: no shell), got #{value.inspect}"
      end
    end
  end

  newparam(:command) do
    desc 'The command to run, as an argv: [program, arg, ...]. No shell.'
    instance_eval(&argv)
  end

  newparam(:unless) do
    desc 'An argv run on each host first: the command runs only where it exits non-zero.'
    instance_eval(&argv)
  end

  newparam(:onlyif) do
    desc 'An argv run on each host first: the command runs only where it exits 0.'
    instance_eval(&argv)
  end

  newparam(:refreshonly, boolean: true, parent: Puppet::Parameter::Boolean) do
    desc 'Run only when the resource is refreshed (notified), still only where unless/onlyif say so.'
    defaultto false
  end

  [
    [:dir, 'The overlord identity directory (func --dir).'],
    [:certmaster, 'HOST:PORT of the certmaster (func --certmaster).'],
    [:timeout, "How long each host may take: a Go duration ('5m') or seconds (func --timeout)."],
    [:forks, 'Hosts called at once (func --forks).'],
    [:broker, 'nats:// URLs of a gofunc broker (func --broker).'],
    [:func, 'The path of the func binary (default: found on PATH).'],
  ].each do |param, text|
    newparam(param) { desc text }
  end

  newproperty(:state) do
    desc "Internal: 'done' when no host needs the command. Leave it unset."
    defaultto 'done'
    validate do |value|
      raise ArgumentError, "state is the type's own ('done'); leave it unset" unless value == 'done'
    end

    # retrieve asks the hosts (unless/onlyif) and says which need the
    # command; 'done' when none does.
    def retrieve
      return should if resource.refreshonly?
      provider.needed
    end

    def sync
      provider.apply
      :gofunc_run_changed
    end

    def change_to_s(_current, _should)
      provider.changed_summary
    end
  end

  validate do
    raise ArgumentError, 'spec is required' unless self[:spec]
    raise ArgumentError, 'command is required' unless self[:command]
  end

  def refresh
    return unless refreshonly?
    return if provider.needed == 'done'
    provider.apply
    notice(provider.changed_summary)
  end
end
