package hardware

import (
	"context"
	"maps"
	"regexp"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/wirenum"
)

// Facts is the facts module: a flat map of facts about the host, each a
// string or a number, for the overlord to match targets against. It
// reads only cheap sources (no disk or network scan). Its exported fields
// are its configuration; the zero Facts is ready to use. It is safe for
// concurrent use.
//
// The built-in facts are:
//
//	hostname              string  os.Hostname
//	os                    string  distribution ("debian", "ubuntu", "fedora"); the system ("linux") if none is known
//	os_family             string  "debian", "rhel", "fedora", ...
//	os_version            string  "12.5"
//	system                string  "linux"
//	kernel                string  kernel release, "6.1.0-18-amd64"
//	arch                  string  uname -m: "x86_64", "aarch64"
//	host_id               string  machine id
//	virtualization        string  "kvm", "docker", ...; "none" on bare metal
//	virtualization_role   string  "guest", "host" or ""
//	cpu_model             string
//	cpu_count             int     logical CPUs
//	cpu_cores             int     physical cores
//	memory_total          int64   bytes
//	swap_total            int64   bytes
//	boot_time             int64   Unix seconds
//
// A fact that cannot be read is left out.
type Facts struct {
	// Static facts are added to the built-in ones, for what the host
	// cannot know about itself ("datacenter": "fra1", "tier": "web").
	// A static fact never replaces a built-in one of the same name, so
	// configuration cannot disguise a host's os or arch. Names must
	// match ^[a-z][a-z0-9_]{0,63}$; others are ignored.
	Static map[string]string
}

var factNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// List returns every fact.
func (f *Facts) List(ctx context.Context) (map[string]any, error) {
	facts := map[string]any{}
	for name, value := range f.Static {
		if factNameRE.MatchString(name) {
			facts[name] = value
		}
	}
	maps.Copy(facts, builtinFacts(ctx))
	if err := ctx.Err(); err != nil {
		return nil, contextFault(err)
	}
	return facts, nil
}

// Get returns the fact called name: a CodeNotFound fault if there is
// none, CodeBadArgs if name cannot be a fact's name.
func (f *Facts) Get(ctx context.Context, name string) (any, error) {
	if !factNameRE.MatchString(name) {
		return nil, gofunc.Errorf(gofunc.CodeBadArgs, "fact name %q must match %s", name, factNameRE)
	}
	facts, err := f.List(ctx)
	if err != nil {
		return nil, err
	}
	value, ok := facts[name]
	if !ok {
		return nil, gofunc.Errorf(gofunc.CodeNotFound, "no fact %q", name)
	}
	return value, nil
}

// Doc describes the module for introspection and the ACLs.
func (f *Facts) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Description: "Flat facts about the host (os, os_version, kernel, arch, cpu_count, memory_total, " +
			"virtualization, hostname, ...) for targeting.",
		Version: "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"List": {Description: "Every fact: {name: string or number}."},
			"Get": {Description: "One fact's value.", Args: []gofunc.ArgDoc{
				{Name: "name", Type: "string", Description: "fact name, such as os or cpu_count"}}},
		},
	}
}

// builtinFacts reads the facts it can; those it cannot are left out.
func builtinFacts(ctx context.Context) map[string]any {
	var w warnings // facts that fail are simply absent
	facts := map[string]any{"system": "linux"}
	set := func(name string, value string) {
		if value != "" {
			facts[name] = value
		}
	}
	o := osInfo(ctx, &w)
	set("os", firstNonEmpty(o.Name, o.System))
	set("os_family", o.Family)
	set("os_version", o.Version)
	set("kernel", o.Kernel)
	set("arch", o.Arch)
	set("host_id", o.HostID)

	hostname, boot, _ := uptime(ctx, &w)
	set("hostname", hostname)
	if !boot.IsZero() {
		facts["boot_time"] = boot.Unix()
	}
	if system, role, err := host.VirtualizationWithContext(ctx); err == nil {
		facts["virtualization"] = firstNonEmpty(system, "none")
		facts["virtualization_role"] = role
	}
	if n, err := cpu.CountsWithContext(ctx, true); err == nil {
		facts["cpu_count"] = n
	}
	if n, err := cpu.CountsWithContext(ctx, false); err == nil {
		facts["cpu_cores"] = n
	}
	if infos, err := cpu.InfoWithContext(ctx); err == nil && len(infos) > 0 {
		set("cpu_model", infos[0].ModelName)
	}
	if v, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		facts["memory_total"] = wirenum.Int64(v.Total)
	}
	if s, err := mem.SwapMemoryWithContext(ctx); err == nil {
		facts["swap_total"] = wirenum.Int64(s.Total)
	}
	return facts
}
