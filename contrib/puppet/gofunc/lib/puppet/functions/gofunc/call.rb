# frozen_string_literal: true

require_relative '../../../puppet_x/gofunc/cli'

# @summary Calls MODULE.METHOD(ARGS) on the gofunc minions SPEC matches
# and returns every host's answer.
#
# The call goes through the `func` command line (`func --json transmit`),
# with the overlord identity in `options['dir']`, at compile time: on
# the puppet server for agents, on the node itself with `puppet apply`
# (wrap the call in `Deferred` to make it on the agent at apply time).
#
# The result is a Hash keyed by host, shaped like `func --json`:
# `{ 'ok' => Boolean, 'value' => ..., 'error' => undef | { 'kind', 'code', 'message' } }`.
# Values cross exactly: 64-bit integers, booleans, floats, strings,
# Binary, Timestamp (whole seconds), and arrays and hashes of them, both
# ways. Undef cannot be sent.
#
# By default (`fail_on_error => true`) any host that failed fails the
# compilation, with one message naming the hosts and their errors; with
# `fail_on_error => false` failed hosts are in the result with `ok =>
# false`. A spec that matches no minion is a failure in the first case
# and an empty Hash in the second; func's own errors (no identity, a
# bad spec) always fail.
#
# @example Ask every web server for its nginx status
#   $status = gofunc::call('web*', 'service', 'status', ['nginx'], {
#     'dir'        => '/etc/puppetlabs/gofunc',
#     'certmaster' => 'cm.example.org:51235',
#   })
#   $status.each |$host, $r| { notice("${host}: ${r['value']['active']}") }
Puppet::Functions.create_function(:'gofunc::call') do
  # @param spec Target spec: globs separated by ';', @group, @group:glob.
  # @param module_name The module ('service', 'command', 'test', ...).
  # @param method_name The method ('status', 'run', 'add', ...).
  # @param args The method's arguments.
  # @param options See Gofunc::Options: dir, certmaster, timeout, forks,
  #   broker, exclude, where, fail_on_error, func.
  # @return [Hash[String, Gofunc::Result]] Every targeted host's answer.
  dispatch :gofunc_call do
    param 'String[1]', :spec
    param 'String[1]', :module_name
    param 'String[1]', :method_name
    optional_param 'Array', :args
    optional_param 'Gofunc::Options', :options
    return_type 'Hash[String, Gofunc::Result]'
  end

  def gofunc_call(spec, module_name, method_name, args = [], options = {})
    what = "gofunc::call #{module_name}.#{method_name} on '#{spec}'"
    fail_on_error = options.fetch('fail_on_error', true)
    begin
      results = PuppetX::Gofunc::CLI.new(options).transmit(request(spec, module_name, method_name, args, options))
    rescue PuppetX::Gofunc::CLI::NoMatch
      raise if fail_on_error
      return {}
    end
    failed = results.count { |_, r| !r['ok'] }
    return results unless fail_on_error && failed.positive?
    raise Puppet::Error, "#{what}: #{failed} of #{results.size} hosts failed: #{PuppetX::Gofunc::CLI.failures(results)}"
  rescue PuppetX::Gofunc::CLI::Error, ArgumentError => e
    raise Puppet::Error, "#{what}: #{e.message}"
  end

  def request(spec, module_name, method_name, args, options)
    req = { 'spec' => spec, 'module' => module_name, 'method' => method_name,
            'args' => PuppetX::Gofunc::Typed.encode(args, 'args') }
    req['exclude'] = Array(options['exclude']) if options['exclude']
    req['where'] = options['where'] if options['where']
    req
  end
end
