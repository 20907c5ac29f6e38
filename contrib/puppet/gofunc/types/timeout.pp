# @summary A per-host timeout: a Go duration ('30s', '1m30s') or whole seconds.
type Gofunc::Timeout = Variant[Integer[1], Pattern[/\A([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+\z/]]
