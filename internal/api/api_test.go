package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		body, want string
	}{
		{`{"native_arch":"amd64"}`, ""},
		{`{"native_arch":"amd64"} `, ""},
		{`{"native_arch":`, "bad JSON"},
		{`{"native_arch":"amd64","x":1}`, "unknown field"},
		{`{} {}`, "after the value"},
		{`{}}`, "after the value"},
		{`{}]x`, "after the value"},
		{`{} ,`, "after the value"},
		{"{}\n\t ", ""},
		{`{"native_arch":"` + strings.Repeat("a", 200) + `"}`, "larger than 100"},
		{`[]`, "bad JSON"},
	}
	for _, tc := range tests {
		var inv Inventory
		err := Decode(strings.NewReader(tc.body), 100, &inv)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Decode(%.40q) = %v, want %q", tc.body, err, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Inventory{NativeArch: "amd64", Packages: []Package{{Name: "libc6", Arch: "amd64", Version: "2.36-9+deb12u13", Status: "install ok installed"}},
		Sources: []Source{{URI: "http://deb.debian.org/debian", Suite: "bookworm", Components: []string{"main"}}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Inventory){
		"version":    func(i *Inventory) { i.Packages[0].Version = "2.36 9" },
		"name":       func(i *Inventory) { i.Packages[0].Name = "Libc6" },
		"status":     func(i *Inventory) { i.Packages[0].Status = "installed" },
		"arch":       func(i *Inventory) { i.NativeArch = "" },
		"source uri": func(i *Inventory) { i.Sources[0].URI = "deb.debian.org" },
		"pin type":   func(i *Inventory) { i.Pins = []Pin{{Type: "bogus"}} },
		"empty":      func(i *Inventory) { i.Packages = nil },
	} {
		inv := ok
		inv.Packages = append([]Package(nil), ok.Packages...)
		inv.Sources = append([]Source(nil), ok.Sources...)
		mutate(&inv)
		if err := inv.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzInventory feeds arbitrary bodies through the server's decoding path:
// it must never panic, and an inventory that validates must survive a
// round trip with the same hash (what the server stores is what it hashed).
func FuzzInventory(f *testing.F) {
	seed, _ := json.Marshal(Inventory{NativeArch: "amd64", Packages: []Package{{Name: "jq", Arch: "amd64", Version: "1.6-2.1", Status: "install ok installed"}},
		Pins: []Pin{{Packages: []string{"jq"}, Type: "version", Data: "1.6*", Priority: 1001}}})
	f.Add(seed)
	f.Add([]byte(`{"native_arch":"amd64","packages":[{"name":"a","arch":"all","version":"1:2~3","status":"hold ok half-installed"}]}`))
	f.Add([]byte(`{"packages":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var inv Inventory
		if Decode(bytes.NewReader(body), MaxBody, &inv) != nil || inv.Validate() != nil {
			return
		}
		again, err := json.Marshal(&inv)
		if err != nil {
			t.Fatal(err)
		}
		var back Inventory
		if err := Decode(bytes.NewReader(again), MaxInventoryBody, &back); err != nil {
			t.Fatalf("re-decoding a valid inventory: %v", err)
		}
		if back.Hash() != inv.Hash() {
			t.Fatal("hash changed over a round trip")
		}
		inv.InstalledPackages()
		inv.DebPins()
	})
}
