package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Sweep removes what earlier runs that crashed left behind: networks
// (bridges, veths, namespaces and the processes in them) and host trees
// (overlay and /proc mounts and the processes chrooted in them). What
// belongs to live networks and hosts, of this process or another, is left
// alone: they hold their lock. Tests call it before making their own.
func Sweep(ctx context.Context) error {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return fmt.Errorf("lab: sweep: %w", err)
	}
	var errs []error
	subnets := map[int]bool{}
	for _, dir := range []string{"/run/netns", "/sys/class/net"} {
		for _, name := range labNames(dir, 0) {
			x, _ := strconv.Atoi(labName.FindStringSubmatch(name)[2])
			subnets[x] = true
		}
	}
	for x := range subnets {
		lock, err := lockFile(filepath.Join(runDir, fmt.Sprintf("net-%d.lock", x)), false)
		if err != nil {
			continue // a live network
		}
		errs = append(errs, cleanNet(ctx, x))
		lock.Close()
	}
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != mountSource || f[2] != "overlay" {
			continue
		}
		root := unescapeMount(f[1])
		dir := filepath.Dir(root)
		lock, err := lockFile(filepath.Join(dir, "lock"), false)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			continue // a live host
		}
		killInside(root, "")
		errs = append(errs, unmount(filepath.Join(root, "proc")), unmount(root))
		if lock != nil {
			lock.Close()
		}
	}
	return errors.Join(errs...)
}

// unescapeMount undoes the octal escapes (\040 for a space) of
// /proc/mounts.
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
