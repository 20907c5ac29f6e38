package service

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/gofunc/gofunc"
)

// UnitFile is one entry of list-unit-files.
type UnitFile struct {
	Name  string `json:"unit_file"` // "ssh.service"
	State string `json:"state"`     // enabled, disabled, static, masked, ...
}

// ParseListUnits parses `systemctl list-units --output=json`.
func ParseListUnits(data []byte) ([]Unit, error) {
	var raw []struct {
		Unit        string `json:"unit"`
		Load        string `json:"load"`
		Active      string `json:"active"`
		Sub         string `json:"sub"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, gofunc.Errorf(gofunc.CodeModule, "cannot parse systemctl list-units output: %v", err)
	}
	units := make([]Unit, 0, len(raw))
	for _, r := range raw {
		if r.Unit == "" {
			continue
		}
		units = append(units, Unit{Name: r.Unit, Load: r.Load, Active: r.Active, Sub: r.Sub, Description: r.Description})
	}
	return units, nil
}

// ParseUnitFiles parses `systemctl list-unit-files --output=json`.
func ParseUnitFiles(data []byte) ([]UnitFile, error) {
	var files []UnitFile
	if err := json.Unmarshal(data, &files); err != nil {
		return nil, gofunc.Errorf(gofunc.CodeModule, "cannot parse systemctl list-unit-files output: %v", err)
	}
	return slices.DeleteFunc(files, func(f UnitFile) bool { return f.Name == "" }), nil
}

// ParseShow parses `systemctl show` output: one Key=Value per line (the
// value may hold '='; a property systemd does not know is simply absent).
func ParseShow(data []byte) (map[string]string, error) {
	props := map[string]string{}
	for line := range bytes.Lines(data) {
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			continue
		}
		key, value, ok := bytes.Cut(line, []byte("="))
		if !ok || len(key) == 0 || bytes.ContainsAny(key, " \t") {
			return nil, gofunc.Errorf(gofunc.CodeModule, "cannot parse systemctl show output line %.80q", line)
		}
		props[string(key)] = string(value)
	}
	return props, nil
}

func statusFrom(p map[string]string) Status {
	atoi := func(s string) int {
		n, _ := strconv.Atoi(s)
		return n
	}
	return Status{
		Name:           p["Id"],
		Description:    p["Description"],
		LoadState:      p["LoadState"],
		ActiveState:    p["ActiveState"],
		SubState:       p["SubState"],
		UnitFileState:  p["UnitFileState"],
		Running:        p["ActiveState"] == "active",
		MainPID:        atoi(p["MainPID"]),
		ExecMainStatus: atoi(p["ExecMainStatus"]),
		ActiveSince:    p["ActiveEnterTimestamp"],
	}
}

// inventoryOf turns list-unit-files entries into the inventory: sorted
// by name, one entry per name, transient units left out.
func inventoryOf(files []UnitFile) []InventoryEntry {
	inv := make([]InventoryEntry, 0, len(files))
	for _, f := range files {
		if f.State != "transient" {
			inv = append(inv, InventoryEntry{Name: f.Name, Enabled: f.State})
		}
	}
	slices.SortStableFunc(inv, func(a, b InventoryEntry) int { return strings.Compare(a.Name, b.Name) })
	return slices.CompactFunc(inv, func(a, b InventoryEntry) bool { return a.Name == b.Name })
}
