package hashchain

import "errors"

// ErrLocked is wrapped by Lock's error when another writer, in this
// process or another, holds the lock.
var ErrLocked = errors.New("hashchain: locked by another writer")
