package overlord

import (
	"io"

	"github.com/gofunc/gofunc/internal/groupsfile"
)

// ErrBadGroups: a groups file cannot be parsed. The error names the line.
var ErrBadGroups = groupsfile.ErrBadGroups

// ParseGroups reads a groups file, Func's INI-like format:
//
//	# comment (a line starting with # or ;)
//	[web]
//	hosts = web*;cache1.example.com
//	hosts = @db:db1*          more lines add to the group
//
//	[db]
//	hosts = db*
//
// Each [section] is a group; its "hosts" lines (Func's "host" is
// accepted too) are target specs whose union is the group. Group names
// are 1 to 64 characters from [A-Za-z0-9_.-]. A group with no hosts
// line is empty. Unknown keys, text outside a section, a group defined
// twice and malformed specs are ErrBadGroups errors naming the line.
// It returns each group's members as one spec ("web*;cache1"). The
// func command edits the file (`func group add|remove`).
func ParseGroups(r io.Reader) (map[string]string, error) { return groupsfile.Parse(r) }

// LoadGroups reads the groups file at path; a missing file defines no
// groups.
func LoadGroups(path string) (map[string]string, error) { return groupsfile.Load(path) }
