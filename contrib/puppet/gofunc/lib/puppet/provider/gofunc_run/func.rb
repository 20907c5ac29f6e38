# frozen_string_literal: true

require_relative '../../../puppet_x/gofunc/cli'

Puppet::Type.type(:gofunc_run).provide(:func) do
  desc 'Runs the checks and the command with the func command line (`func --json SPEC run -- ARGV`).'

  # needed asks the hosts (onlyif, then unless) and returns 'done' when
  # none needs the command, else which do: "needed on web1, web3".
  def needed
    @plan = check
    hosts, unknown = @plan.values_at(:hosts, :unknown)
    return 'done' if hosts == [] && unknown.empty?
    parts = []
    unless hosts == []
      parts << (hosts.nil? ? "needed on every host of '#{resource[:spec]}'" : "needed on #{names(hosts)}")
    end
    parts << "unknown on #{names(unknown.keys)}" unless unknown.empty?
    parts.join('; ')
  end

  # apply runs the command on the hosts that need it, then fails naming
  # the hosts where it failed and those that could not be checked.
  def apply
    plan = @plan || check
    failed = {}
    @ran = []
    unless plan[:hosts] == []
      results = cli.run(plan[:hosts] ? plan[:hosts].join(';') : resource[:spec], resource[:command])
      @ran = results.select { |_, r| r['ok'] }.keys.sort
      failed = results.reject { |_, r| r['ok'] }
    end
    problems = []
    problems << "the command failed on #{failures(failed)}" unless failed.empty?
    problems << "could not check #{failures(plan[:unknown])}" unless plan[:unknown].empty?
    return if problems.empty?
    problems << "it ran on #{names(@ran)}" unless @ran.empty?
    raise Puppet::Error, problems.join('; ')
  end

  # changed_summary says where the command ran: "ran on web1, web3
  # (web2 did not need it)".
  def changed_summary
    text = "ran #{resource[:command].inspect} on #{names(@ran || [])}"
    skipped = @plan ? @plan[:skipped] : []
    skipped.empty? ? text : "#{text} (#{names(skipped)} did not need it)"
  end

  private

  def names(hosts)
    PuppetX::Gofunc::CLI.host_list(hosts)
  end

  def failures(results)
    PuppetX::Gofunc::CLI.failures(results)
  end

  def cli
    PuppetX::Gofunc::CLI.new(resource.to_hash.slice(:dir, :certmaster, :timeout, :forks, :broker, :func))
  end

  # check runs onlyif, then unless on the hosts onlyif left, and returns
  # the hosts that need the command (nil: every host of the spec, when
  # there is no check), those that did not (skipped) and those whose
  # check could not run (unknown: host => result).
  def check
    hosts = nil
    skipped = []
    unknown = {}
    [[:onlyif, true], [:unless, false]].each do |param, run_where_ok|
      argv = resource[param]
      next if argv.nil? || hosts == []
      results = cli.run(hosts ? hosts.join(';') : resource[:spec], argv)
      hosts = []
      results.each do |host, r|
        if r['ok'] || %w[exit signal].include?(r['error']['kind'])
          (r['ok'] == run_where_ok ? hosts : skipped) << host
        else
          unknown[host] = r
        end
      end
    end
    { hosts: hosts&.sort, skipped: skipped.sort, unknown: unknown }
  end
end
