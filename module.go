package gofunc

// ModuleDoc describes a module for introspection: module_description,
// module_version and get_method_args answer from it, and the audit log
// learns from it which arguments are secret. A module that has no doc
// still works; its methods are listed with their Go types only.
type ModuleDoc struct {
	Description string
	Version     string
	// Methods is keyed by the Go method name ("Run", not "run").
	Methods map[string]MethodDoc
}

// MethodDoc describes one method.
type MethodDoc struct {
	// Wire overrides the method's wire name; empty means the snake_case
	// of the Go name ("ListModules" -> "list_modules").
	Wire        string
	Description string
	// Args names the method's parameters in order, not counting a
	// leading context.Context.
	Args []ArgDoc
	// Dangerous methods (reboot, shell) are denied unless an ACL rule
	// names them explicitly; a catch-all grant such as "*" does not
	// cover them.
	Dangerous bool
	// AliasOf makes the method another name for a method of the same
	// module ("read") or of another one ("nagios.run_check"), kept for
	// Func compatibility: getfile.getchunk, nagios_check.run. The ACL
	// decides a call to the alias as a call to AliasOf (a rule granting
	// or denying getfile.read covers getfile.getchunk, so a deny rule
	// cannot be walked around by the other name, and the alias is
	// dangerous when AliasOf is), and get_method_args shows it as
	// alias_of. Empty means the method is no alias.
	AliasOf string
}

// ArgDoc describes one argument.
type ArgDoc struct {
	Name        string
	Type        string // XML-RPC type name: string, int, boolean, double, base64, dateTime.iso8601, array, struct
	Description string
	// Optional arguments may be left off the end of a call; they then
	// take Default, or the Go zero value when Default is nil.
	Optional bool
	Default  any
	// Secret arguments are redacted in the audit log.
	Secret bool
	// SecretFields redacts only these members (wire names) of a struct
	// argument, so the rest stays readable in the audit log: command.run
	// records its options' timeout and dir, not its env and stdin. An
	// argument that is not a struct is redacted whole.
	SecretFields []string
	// Content arguments (file bodies) are recorded in the audit log as
	// their size and SHA-256, not their bytes.
	Content bool
}

// Documented is implemented by modules that describe themselves. The
// minion calls Doc once, when the module is registered.
type Documented interface {
	Doc() ModuleDoc
}
