package deb

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// LoadAptConfig reads apt's configuration of the system under root as
// pkgInitConfig does: apt's built-in defaults (all but APT::Architecture,
// which the caller derives from dpkg), then the files of Dir::Etc::parts
// (ROOT/etc/apt/apt.conf.d; names without extension or ending in .conf,
// made of letters, digits, "_-:.", in byte order), then Dir::Etc::main
// (ROOT/etc/apt/apt.conf), then the defaults debSystem adds
// (Dir::State::status). APT_CONFIG in the environment is not consulted.
func LoadAptConfig(root string) (*AptConfig, error) {
	c := &AptConfig{Root: root}
	c.setInitDefaults()
	if parts := c.FindDir("Dir::Etc::parts", "/dev/null"); !strings.HasSuffix(parts, "/dev/null") {
		if dir := c.rootPath(parts); aptIsDir(dir) {
			if err := c.readDir(dir, 0); err != nil {
				return nil, err
			}
		}
	}
	if main := c.FindFile("Dir::Etc::main", "/dev/null"); !strings.HasSuffix(main, "/dev/null") {
		if f := c.rootPath(main); aptIsRegular(f) {
			if err := c.readFile(f, 0); err != nil {
				return nil, err
			}
		}
	}
	c.setSystemDefaults()
	return c, nil
}

// rootPath maps a path apt would open to the file under c.Root.
func (c *AptConfig) rootPath(p string) string {
	if c.Root == "" {
		return p
	}
	return filepath.Join(c.Root, p)
}

func (c *AptConfig) warn(format string, args ...any) {
	if c != nil && c.Warn != nil {
		c.Warn(fmt.Sprintf(format, args...))
	}
}

func (c *AptConfig) readFile(path string, depth int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return c.parse(f, path, depth)
}

// readDir is ReadConfigDir: every accepted file, in order.
func (c *AptConfig) readDir(dir string, depth int) error {
	files, err := c.filesInDir(dir, []string{"conf", ""})
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := c.readFile(f, depth); err != nil {
			return err
		}
	}
	return nil
}

// aptInitDefaults are pkgInitConfig's CndSets (apt-pkg/init.cc), in order,
// as Debian's apt 2.6 is built; APT::Architecture is left to the caller.
var aptInitDefaults = [][2]string{
	{"APT::Install-Recommends", "1"}, {"APT::Install-Suggests", "0"},
	{"Dir", "/"}, {"Dir::State", "var/lib/apt"}, {"Dir::State::lists", "lists/"},
	{"Dir::State::cdroms", "cdroms.list"}, {"Dir::Cache", "var/cache/apt"},
	{"Dir::Cache::archives", "archives/"}, {"Dir::Cache::srcpkgcache", "srcpkgcache.bin"},
	{"Dir::Cache::pkgcache", "pkgcache.bin"}, {"Dir::Etc", "etc/apt"},
	{"Dir::Etc::sourcelist", "sources.list"}, {"Dir::Etc::sourceparts", "sources.list.d"},
	{"Dir::Etc::main", "apt.conf"}, {"Dir::Etc::netrc", "auth.conf"},
	{"Dir::Etc::netrcparts", "auth.conf.d"}, {"Dir::Etc::parts", "apt.conf.d"},
	{"Dir::Etc::preferences", "preferences"}, {"Dir::Etc::preferencesparts", "preferences.d"},
	{"Dir::Etc::trusted", "trusted.gpg"}, {"Dir::Etc::trustedparts", "trusted.gpg.d"},
	{"Dir::Bin::methods", "/usr/lib/apt/methods"}, {"Dir::Bin::solvers::", "/usr/lib/apt/solvers"},
	{"Dir::Bin::planners::", "/usr/lib/apt/planners"}, {"Dir::Media::MountPath", "/media/apt"},
	{"Dir::Log", "var/log/apt"}, {"Dir::Log::Terminal", "term.log"},
	{"Dir::Log::History", "history.log"}, {"Dir::Log::Planner", "eipp.log.xz"},
}

// aptIgnoreFilesSilently are the Dir::Ignore-Files-Silently defaults: file
// names in configuration directories that are skipped without a notice.
var aptIgnoreFilesSilently = []string{`~$`, `\.disabled$`, `\.bak$`, `\.dpkg-[a-z]+$`,
	`\.ucf-[a-z]+$`, `\.save$`, `\.orig$`, `\.distUpgrade$`}

var aptInitDefaultsLate = [][2]string{
	{"Acquire::AllowInsecureRepositories", "0"}, {"Acquire::AllowWeakRepositories", "0"},
	{"Acquire::AllowDowngradeToInsecureRepositories", "0"}, {"Acquire::cdrom::mount", "/media/cdrom/"},
	{"APT::Sandbox::User", "_apt"},
	{"Acquire::IndexTargets::deb::Packages::MetaKey", "$(COMPONENT)/binary-$(ARCHITECTURE)/Packages"},
	{"Acquire::IndexTargets::deb::Packages::flatMetaKey", "Packages"},
	{"Acquire::IndexTargets::deb::Packages::ShortDescription", "Packages"},
	{"Acquire::IndexTargets::deb::Packages::Description", "$(RELEASE)/$(COMPONENT) $(ARCHITECTURE) Packages"},
	{"Acquire::IndexTargets::deb::Packages::flatDescription", "$(RELEASE) Packages"},
	{"Acquire::IndexTargets::deb::Packages::Optional", "0"},
	{"Acquire::IndexTargets::deb::Translations::MetaKey", "$(COMPONENT)/i18n/Translation-$(LANGUAGE)"},
	{"Acquire::IndexTargets::deb::Translations::flatMetaKey", "$(LANGUAGE)"},
	{"Acquire::IndexTargets::deb::Translations::ShortDescription", "Translation-$(LANGUAGE)"},
	{"Acquire::IndexTargets::deb::Translations::Description", "$(RELEASE)/$(COMPONENT) Translation-$(LANGUAGE)"},
	{"Acquire::IndexTargets::deb::Translations::flatDescription", "$(RELEASE) Translation-$(LANGUAGE)"},
	{"Acquire::IndexTargets::deb-src::Sources::MetaKey", "$(COMPONENT)/source/Sources"},
	{"Acquire::IndexTargets::deb-src::Sources::flatMetaKey", "Sources"},
	{"Acquire::IndexTargets::deb-src::Sources::ShortDescription", "Sources"},
	{"Acquire::IndexTargets::deb-src::Sources::Description", "$(RELEASE)/$(COMPONENT) Sources"},
	{"Acquire::IndexTargets::deb-src::Sources::flatDescription", "$(RELEASE) Sources"},
	{"Acquire::IndexTargets::deb-src::Sources::Optional", "0"},
	{"Acquire::Changelogs::URI::Origin::Debian", "https://metadata.ftp-master.debian.org/changelogs/@CHANGEPATH@_changelog"},
	{"Acquire::Changelogs::URI::Origin::Ubuntu", "https://changelogs.ubuntu.com/changelogs/pool/@CHANGEPATH@/changelog"},
	{"Acquire::Changelogs::AlwaysOnline::Origin::Ubuntu", "1"},
	{"DPkg::Path", "/usr/sbin:/usr/bin:/sbin:/bin"},
}

func (c *AptConfig) setInitDefaults() {
	if !c.Exists("APT::Build-Essential") {
		c.Set("APT::Build-Essential::", "build-essential")
	}
	for _, kv := range aptInitDefaults {
		c.cndSet(kv[0], kv[1])
	}
	for _, re := range aptIgnoreFilesSilently {
		c.Set("Dir::Ignore-Files-Silently::", re)
	}
	for _, kv := range aptInitDefaultsLate {
		c.cndSet(kv[0], kv[1])
	}
}

// setSystemDefaults is what debSystem::Initialize adds after the files.
func (c *AptConfig) setSystemDefaults() {
	c.cndSet("Dir::State::extended_states", "extended_states")
	if !c.Exists("Dir::State::status") {
		c.Set("Dir::State::status", c.dpkgStatusLocation())
	}
	c.cndSet("Dir::Bin::dpkg", "/usr/bin/dpkg")
}

// dpkgStatusLocation is getDpkgStatusLocation: dpkg's status file beside
// apt's state directory (var/lib/apt -> var/lib/dpkg/status).
func (c *AptConfig) dpkgStatusLocation() string {
	var p AptConfig
	p.Set("Dir", c.Find("Dir", "/"))
	p.Set("Dir::State::status", "status")
	state := c.Find("Dir::State", "var/lib/apt")
	dir := strings.TrimSuffix(strings.TrimSuffix(state, "/"), "/apt")
	if dir == strings.TrimSuffix(state, "/") || dir == "" {
		p.Set("Dir::State", "var/lib/dpkg")
	} else {
		p.Set("Dir::State", dir+"/dpkg")
	}
	return p.FindFile("Dir::State::status", "")
}

// Architectures is APT::Configuration::getArchitectures: APT::Architectures
// when set, else APT::Architecture (default native) and dpkg's foreign
// architectures; APT::Architecture always comes first when missing, empty
// and duplicate names are dropped, and APT::BarbarianArchitectures removed.
func (c *AptConfig) Architectures(native string, foreign []string) []string {
	arch := c.Find("APT::Architecture", native)
	archs := c.FindList("APT::Architectures")
	if len(archs) == 0 {
		archs = append([]string{arch}, foreign...)
	}
	if !aptContains(archs, arch) {
		archs = append([]string{arch}, archs...)
	}
	barbarian := c.FindList("APT::BarbarianArchitectures")
	var out []string
	for _, a := range archs {
		if a != "" && !aptContains(out, a) && !aptContains(barbarian, a) {
			out = append(out, a)
		}
	}
	return out
}

// ReadDpkgArch returns the architectures listed in ROOT/var/lib/dpkg/arch,
// dpkg's architecture database (dpkg --add-architecture), one per line. The
// file may also list the native architecture; Architectures drops such
// duplicates. A missing file means no foreign architectures.
func ReadDpkgArch(root string) (foreign []string, err error) {
	data, err := os.ReadFile(filepath.Join(root, "var/lib/dpkg/arch"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if a := strings.TrimSpace(line); a != "" && !aptContains(foreign, a) {
			foreign = append(foreign, a)
		}
	}
	return foreign, nil
}

// filesInDir is GetListOfFilesInDir(dir, exts, sorted): regular files (or
// links to them) whose extension is in exts ("" allows none) and whose name
// has only letters, digits and "_-:." (no leading or trailing "."), in byte
// order. Rejected names are reported through Warn unless they match
// Dir::Ignore-Files-Silently, as apt's notices are.
func (c *AptConfig) filesInDir(dir string, exts []string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list of files can't be created: %w", err)
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		if !e.Type().IsRegular() && !aptIsRegular(path) {
			if !aptIsDir(path) {
				c.notice(name, "Ignoring '%s' in directory '%s' as it is not a regular file", name, dir)
			}
			continue
		}
		if msg := aptBadExtension(name, exts); msg != "" {
			c.notice(name, "Ignoring file '%s' in directory '%s' as it has %s", name, dir, msg)
			continue
		}
		if aptBadFileName(name) {
			continue
		}
		out = append(out, path)
	}
	sort.Strings(out)
	return out, nil
}

func aptBadExtension(name string, exts []string) string {
	dot := strings.LastIndexByte(name, '.')
	switch {
	case dot < 0 && !aptContains(exts, ""):
		return "no filename extension"
	case dot >= 0 && !aptContains(exts, name[dot+1:]):
		return "an invalid filename extension"
	}
	return ""
}

// aptBadFileName: run-parts style names only, never ending in ".".
func aptBadFileName(name string) bool {
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if !aptIsAlnum(ch) && ch != '_' && ch != '-' && ch != ':' && ch != '.' {
			return true
		}
	}
	return strings.HasSuffix(name, ".")
}

func (c *AptConfig) notice(name, format string, args ...any) {
	if c == nil || c.Warn == nil {
		return
	}
	for _, re := range c.FindList("Dir::Ignore-Files-Silently") {
		if aptRegexMatch(re, name) {
			return
		}
	}
	c.warn(format, args...)
}

func aptIsDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func aptIsRegular(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func aptContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func aptDefaultConfig() *AptConfig {
	c := &AptConfig{}
	c.setInitDefaults()
	c.setSystemDefaults()
	return c
}
