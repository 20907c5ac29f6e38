# frozen_string_literal: true

require 'base64'
require 'time'

module PuppetX
  module Gofunc
    # Typed converts Puppet values to and from the typed JSON of
    # `func transmit` ("typed": true), which carries what plain JSON
    # cannot: {"$binary": base64} is XML-RPC <base64> (Puppet's Binary),
    # {"$datetime": RFC 3339} is <dateTime.iso8601> (Timestamp, whole
    # seconds), doubles keep their fraction, and a struct whose only key
    # starts with "$" travels wrapped as {"$map": {...}}. Integers are
    # 64-bit on both sides, so nothing is rounded.
    module Typed
      BINARY = '$binary'
      DATETIME = '$datetime'
      MAP = '$map'
      NSECS_PER_SEC = 1_000_000_000
      INT64 = (-2**63..2**63 - 1).freeze

      module_function

      # encode returns value as typed JSON, or raises ArgumentError
      # naming where (path) a value XML-RPC cannot carry is.
      def encode(value, path)
        case value
        when Puppet::Pops::Types::PSensitiveType::Sensitive
          encode(value.unwrap, path)
        when nil
          raise ArgumentError, "#{path} is undef: XML-RPC has no undef; leave the argument out"
        when true, false
          value
        when Integer
          raise ArgumentError, "#{path}: #{value} does not fit in 64 bits" unless INT64.cover?(value)
          value
        when Float
          raise ArgumentError, "#{path}: #{value} has no XML-RPC form" unless value.finite?
          value
        when String
          encode_string(value, path)
        when Puppet::Pops::Types::PBinaryType::Binary
          { BINARY => value.to_s }
        when Puppet::Pops::Time::Timestamp
          encode_timestamp(value, path)
        when Array
          value.each_with_index.map { |e, i| encode(e, "#{path}[#{i}]") }
        when Hash
          encode_hash(value, path)
        else
          raise ArgumentError, "#{path}: a #{type_name(value)} cannot be sent (send a String, Integer, Float, Boolean, Binary, " \
                               'Timestamp, Array or Hash)'
        end
      end

      def encode_string(value, path)
        text = value.encoding == Encoding::UTF_8 ? value : value.dup.force_encoding(Encoding::UTF_8)
        raise ArgumentError, "#{path} is not valid UTF-8 text: send bytes as a Binary" unless text.valid_encoding?
        text
      end

      def encode_timestamp(value, path)
        if value.nsecs % NSECS_PER_SEC != 0
          raise ArgumentError, "#{path}: #{value} has a fraction of a second; XML-RPC times carry whole seconds"
        end
        { DATETIME => value.to_time.utc.strftime('%Y-%m-%dT%H:%M:%SZ') }
      end

      def encode_hash(value, path)
        out = {}
        value.each do |k, v|
          raise ArgumentError, "#{path}: the key #{k.inspect} is not a String (XML-RPC struct keys are)" unless k.is_a?(String)
          out[k] = encode(v, "#{path}[#{k.inspect}]")
        end
        tag_like?(out) ? { MAP => out } : out
      end

      # decode turns typed JSON (as JSON.parse returns it) into Puppet
      # values.
      def decode(value)
        case value
        when Array
          value.map { |e| decode(e) }
        when Hash
          return decode_tag(*value.first) if tag_like?(value)
          value.transform_values { |e| decode(e) }
        else
          value
        end
      end

      def decode_tag(tag, inner)
        case tag
        when BINARY
          Puppet::Pops::Types::PBinaryType::Binary.from_base64_strict(inner)
        when DATETIME
          Puppet::Pops::Time::Timestamp.from_time(::Time.iso8601(inner))
        when MAP
          inner.transform_values { |e| decode(e) }
        else
          raise ArgumentError, "func answered with a value tagged #{tag.inspect}, which this module does not know: upgrade it"
        end
      end

      def tag_like?(hash)
        hash.size == 1 && hash.keys.first.is_a?(String) && hash.keys.first.start_with?('$')
      end

      def type_name(value)
        Puppet::Pops::Types::TypeCalculator.infer_set(value).to_s
      rescue StandardError
        value.class.name
      end
    end
  end
end
