package copyfile

import "github.com/gofunc/gofunc"

var (
	pathArg    = gofunc.ArgDoc{Name: "path", Type: "string", Description: "absolute path of the file"}
	idArg      = gofunc.ArgDoc{Name: "id", Type: "string", Description: "upload id returned by open"}
	optionsArg = gofunc.ArgDoc{
		Name: "options", Type: "struct", Optional: true,
		Description: "mode (int or octal string; default: keep, 0644 for a new file), owner and group " +
			"(name or number; default: keep), backup (boolean: keep the old file as <path>.<time>.bak), " +
			"size (expected bytes), sha256 (expected hex digest)",
	}
	commitResult = "; returns {changed, backup_path, sha256, size}"
)

// Doc describes the module for introspection.
func (m *Module) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Description: "Write files atomically with checksums: in one call (copyfile) or in chunks (open, append, commit).",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"Open": {
				Description: "Start a chunked upload to path; returns the upload id",
				Args:        []gofunc.ArgDoc{pathArg, optionsArg},
			},
			"Append": {
				Description: "Add a chunk at offset (the bytes received so far); returns the bytes received so far",
				Args: []gofunc.ArgDoc{
					idArg,
					{Name: "offset", Type: "int", Description: "bytes already sent"},
					{Name: "data", Type: "base64", Description: "the chunk, at most 4 MiB by default", Content: true},
					{Name: "chunk_sha256", Type: "string", Description: "SHA-256 of data, hex"},
				},
			},
			"Commit": {
				Description: "Check the upload and rename it into place (no change if identical)" + commitResult,
				Args:        []gofunc.ArgDoc{idArg},
			},
			"Abort": {
				Description: "Drop an upload and its temporary file; returns true",
				Args:        []gofunc.ArgDoc{idArg},
			},
			"Copyfile": {
				Description: "Write a small file (at most one chunk) in one call" + commitResult,
				Args: []gofunc.ArgDoc{
					pathArg,
					{Name: "data", Type: "base64", Description: "file content", Content: true},
					optionsArg,
				},
			},
			"Checksum": {
				Description: "SHA-256 of a file, hex",
				Args:        []gofunc.ArgDoc{pathArg},
			},
		},
	}
}
