package repo

import "time"

// Source is one apt source reduced to what fetching needs: one repository
// URI and one suite, with the components, architectures and keys to use.
type Source struct {
	URI        string   // e.g. http://deb.debian.org/debian (no trailing slash needed)
	Suite      string   // e.g. bookworm-security
	Components []string // e.g. main, contrib
	Archs      []string // binary architectures to fetch, e.g. amd64
	// SignedBy lists keyring files (binary or ASCII-armored) or inline
	// ASCII-armored public key blocks. Empty means apt's default trusted
	// keyrings (/etc/apt/trusted.gpg and /etc/apt/trusted.gpg.d/*).
	SignedBy []string
	// Trusted mirrors apt's [trusted=yes]: the operator explicitly accepts
	// unsigned metadata for this source. Indexes from it are marked
	// Verified=false; hashes are still checked where a Release exists.
	Trusted bool
	// Where marks where the source was declared, for error messages,
	// e.g. "/etc/apt/sources.list.d/debian.sources:1".
	Where string
}

// FileHash is one entry of a Release file's SHA256 list.
type FileHash struct {
	SHA256 string
	Size   int64
}

// Release is the parsed, signature-verified content of an InRelease or Release file.
type Release struct {
	Origin, Label, Suite, Codename, Version string
	Date, ValidUntil                        time.Time
	NotAutomatic, ButAutomaticUpgrades      bool
	AcquireByHash                           bool
	Architectures, Components               []string
	// NoArchAllPackages is "No-Support-for-Architecture-all: Packages":
	// binary-all packages are folded into each architecture's Packages.
	NoArchAllPackages bool
	// Files maps paths relative to dists/SUITE/ (e.g. "main/binary-amd64/Packages.xz")
	// to their SHA256 and size.
	Files map[string]FileHash
	// Signer is the fingerprint (upper-case hex) of the primary key whose
	// signature was accepted; empty when the Release was not verified.
	Signer string
}

// Index is one verified Packages index of one (source, component, arch).
type Index struct {
	Source    Source
	Release   *Release
	Component string
	Arch      string
	Site      string // host of the source URI, what apt's "Pin: origin" matches
	// SHA256 and Size of the uncompressed Packages content, from the signed Release.
	SHA256   string
	Size     int64
	Path     string // local file holding the content
	Compress string // "", "xz", "gz", "lz4": how Path is compressed
	// FileSHA256 and FileSize describe the file at Path as stored, when the
	// signed Release lists that exact file (e.g. Packages.xz); empty for
	// apt's recompressed lists files, which only the content hash covers.
	FileSHA256 string
	FileSize   int64
	Verified   bool // false only for Trusted sources without a valid signature
	// From is, offline, the directory the Release and this index were
	// read from (the cache's lists or apt's); empty online.
	From string
}
