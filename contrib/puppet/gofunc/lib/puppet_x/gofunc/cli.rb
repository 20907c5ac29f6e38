# frozen_string_literal: true

require 'json'
require 'open3'
require_relative 'typed'

module PuppetX
  module Gofunc
    # CLI runs the func command line: `func --json transmit` for calls,
    # `func --json SPEC run -- ARGV` for commands. It never goes through
    # a shell, and it reads func's JSON, never its human output.
    class CLI
      # The func flags an option sets, and how its value is written.
      FLAGS = {
        'dir' => '--dir',
        'certmaster' => '--certmaster',
        'timeout' => '--timeout',
        'forks' => '--forks',
        'broker' => '--broker',
      }.freeze

      # Fault codes are gofunc's wire protocol (fault.go), never
      # renumbered: their names make failure messages readable.
      FAULT_NAMES = {
        1 => 'failed', -32_700 => 'parse error', -32_600 => 'invalid request',
        -32_601 => 'no such method', -32_602 => 'bad arguments', -32_603 => 'internal error',
        -32_001 => 'denied', -32_002 => 'timed out', -32_003 => 'too large', -32_004 => 'busy',
        -32_005 => 'audit failed', -32_006 => 'cancelled', -32_007 => 'not found',
        -32_008 => 'unavailable', -32_009 => 'conflict'
      }.freeze

      # Exit statuses of func (DESIGN.md's command-line contract).
      EXIT_NO_MATCH = 3

      # How many hosts a failure message names per distinct error.
      HOSTS_NAMED = 10

      # Error is func failing as a whole (no host was called): its
      # message says why, without the caller's context.
      class Error < Puppet::Error; end

      # NoMatch is raised when the spec matched no minion.
      class NoMatch < Error; end

      # options: the keys of Gofunc::Options (String keys; Symbols are
      # accepted for the type's parameters).
      def initialize(options)
        @options = options.transform_keys(&:to_s).reject { |_, v| v.nil? }
      end

      # transmit sends one request ("typed" JSON) and returns the hosts'
      # results, values decoded to Puppet values.
      def transmit(request)
        results = execute(['--json', 'transmit'], JSON.generate(request.merge('typed' => true)))
        results.transform_values do |r|
          normalized(r).merge('value' => Typed.decode(r['value']))
        end
      end

      # run runs argv on the hosts spec matches (command.run: no shell)
      # and returns func run's per-host results: ok only when the
      # command exited 0; error kind "exit" (code: the status) or
      # "signal" when it ran and failed.
      def run(spec, argv)
        execute(['--json', '--quiet', spec, 'run', '--', *argv], '').transform_values { |r| normalized(r) }
      end

      # failures describes the failed hosts of results in one line,
      # hosts that failed alike together: "web2, web4: unreachable
      # (connection refused); web3: exit 2: disk full".
      def self.failures(results)
        failed = results.reject { |_, r| r['ok'] }
        failed.group_by { |_, r| describe(r) }.map { |text, pairs| "#{host_list(pairs.map(&:first))}: #{text}" }.join('; ')
      end

      # describe is one host's failure in a few words.
      def self.describe(result)
        error = result['error'] || {}
        kind, code, message = error.values_at('kind', 'code', 'message')
        case kind
        when 'fault' then "#{FAULT_NAMES.fetch(code, "fault #{code}")}: #{message}"
        when 'unreachable' then "unreachable (#{message})"
        when 'exit', 'signal' then command_failure(kind, code, result['value'])
        else "#{kind}: #{message}"
        end
      end

      # command_failure is "exit 3: <first line of stderr>".
      def self.command_failure(kind, code, value)
        text = kind == 'signal' ? "killed by signal #{code - 128}" : "exit #{code}"
        line = (value || {}).fetch('stderr', '').to_s.lines.map(&:strip).reject(&:empty?).first
        line ? "#{text}: #{line[0, 200]}" : text
      end

      # host_list names hosts, at most HOSTS_NAMED of them.
      def self.host_list(hosts)
        hosts = hosts.sort
        return hosts.join(', ') if hosts.size <= HOSTS_NAMED
        "#{hosts.first(HOSTS_NAMED).join(', ')} and #{hosts.size - HOSTS_NAMED} more"
      end

      private

      def binary
        path = @options['func']
        if path
          raise Error, "func is #{path}, which is not an executable file" unless File.file?(path) && File.executable?(path)
          return path
        end
        Puppet::Util.which('func') or
          raise Error, "no func binary on PATH (#{ENV.fetch('PATH', '')}); install gofunc's func or set the 'func' option"
      end

      def flags
        FLAGS.flat_map do |key, flag|
          value = @options[key]
          next [] if value.nil?
          value = "#{value}s" if key == 'timeout' && value.is_a?(Integer)
          [flag, value.to_s]
        end
      end

      # execute runs func with args and stdin and returns its JSON
      # object keyed by host; func's own failures (usage, identity, no
      # match) raise with func's message.
      def execute(args, stdin)
        bin = binary
        out, err, status = Open3.capture3([bin, 'func'], *flags, *args, stdin_data: stdin, binmode: true)
        parsed = parse(out, err, status)
        report = parsed['error'] if parsed.size == 1 && parsed['error'].is_a?(Hash) && !parsed['error'].key?('ok')
        return parsed unless report
        raise NoMatch, "func: #{report['message']}" if status.exitstatus == EXIT_NO_MATCH
        raise Error, "func: #{report['message']}#{hint(report['message'])}"
      rescue SystemCallError => e
        raise Error, "cannot run #{bin}: #{e.message}"
      end

      # hint explains func's refusal of an option this module passed.
      def hint(message)
        return '' unless message.to_s.include?('unknown flag --broker')
        ' (this func has no broker transport: upgrade it, or leave the broker option out to call the minions directly)'
      end

      def parse(out, err, status)
        parsed = JSON.parse(out.force_encoding(Encoding::UTF_8))
        return parsed if parsed.is_a?(Hash)
        raise JSON::ParserError, 'not an object'
      rescue JSON::ParserError
        detail = err.force_encoding(Encoding::UTF_8).scrub.strip.lines.last(5).join.strip
        raise Error, "func exited #{status.exitstatus || status} without its JSON answer: #{detail}"
      end

      # normalized gives every host the same keys, as Gofunc::Result
      # says: an error always has kind, code (undef when not a fault)
      # and message.
      def normalized(result)
        error = result['error']
        error &&= { 'kind' => error['kind'].to_s, 'code' => error['code'], 'message' => error['message'].to_s }
        { 'ok' => result['ok'] == true, 'value' => result['value'], 'error' => error }
      end
    end
  end
end
