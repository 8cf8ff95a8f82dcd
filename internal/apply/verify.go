package apply

import "context"

// Verify compares what `dpkg-query -W` shows on the system at root with
// changes (a plan's), as Install does afterwards: for an install that
// was interrupted, it says what dpkg actually did.
func Verify(ctx context.Context, root string, changes []Change) ([]PackageResult, error) {
	r, err := newRunner(root)
	if err != nil {
		return nil, err
	}
	return verify(ctx, r, changes)
}
