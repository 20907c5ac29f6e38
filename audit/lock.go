package audit

import (
	"errors"
	"fmt"
	"os"

	"github.com/gofunc/gofunc/internal/hashchain"
)

// lockFile opens (creating, 0600) and exclusively locks path, so that two
// Logs never write the same chain (see hashchain.Lock).
func lockFile(path string) (*os.File, error) {
	f, err := hashchain.Lock(path)
	if errors.Is(err, hashchain.ErrLocked) {
		return nil, fmt.Errorf("%w: %s is locked", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: lock: %w", err)
	}
	return f, nil
}
