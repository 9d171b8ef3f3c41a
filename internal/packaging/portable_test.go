package packaging

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"debug/macho"
	"debug/pe"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The staff command line for Windows and macOS laptops: scripts/package-cli (run by
// scripts/package) makes a zip and tar.gz archives holding a binary for that system and
// architecture, the README's section on the command line and the full reference.
func TestPortableCLI(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	run(t, root, []string{"DIST=" + dir, "BUILD=" + filepath.Join(dir, "build"), "VERSION=1.0~test"}, "./scripts/package-cli")
	ref, err := os.ReadFile(filepath.Join(root, "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, files map[string][]byte, binName string, isArch func([]byte) error) {
		t.Helper()
		prefix := strings.TrimSuffix(strings.TrimSuffix(name, ".zip"), ".tar.gz") + "/"
		bin, readme, cli := files[prefix+binName], string(files[prefix+"README.md"]), files[prefix+"cli.md"]
		if bin == nil || readme == "" || cli == nil {
			t.Fatalf("%s lacks %s, README.md or cli.md: %d files", name, binName, len(files))
		}
		if err := isArch(bin); err != nil {
			t.Errorf("%s: %s: %v", name, binName, err)
		}
		if !strings.Contains(readme, "## The staff command line") || !strings.Contains(readme, "loa whoami") || strings.Contains(readme, "## What `make demo` shows") {
			t.Errorf("%s: README.md is not the README's command-line section:\n%s", name, readme)
		}
		if !bytes.Equal(bytes.ReplaceAll(cli, []byte("\r\n"), []byte("\n")), ref) {
			t.Errorf("%s: cli.md is not docs/cli.md", name)
		}
	}

	zname := "loa_1.0~test_windows_amd64.zip"
	zr, err := zip.OpenReader(filepath.Join(dir, zname))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	check(zname, files, "loa.exe", func(b []byte) error {
		f, err := pe.NewFile(bytes.NewReader(b))
		if err == nil && f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
			err = fmt.Errorf("PE machine %#x, want amd64 (%#x)", f.Machine, pe.IMAGE_FILE_MACHINE_AMD64)
		}
		return err
	})
	if !bytes.Contains(files["loa_1.0~test_windows_amd64/README.md"], []byte("\r\n")) {
		t.Error("the Windows README.md has bare LF line ends (Notepad shows one line)")
	}

	for arch, cpu := range map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64} {
		name := "loa_1.0~test_darwin_" + arch + ".tar.gz"
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(gz)
		files := map[string][]byte{}
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Name == strings.TrimSuffix(name, ".tar.gz")+"/loa" && h.Mode&0o111 == 0 {
				t.Errorf("%s: loa is not executable (mode %o)", name, h.Mode)
			}
			files[h.Name], _ = io.ReadAll(tr)
		}
		f.Close()
		check(name, files, "loa", func(b []byte) error {
			m, err := macho.NewFile(bytes.NewReader(b))
			if err == nil && m.Cpu != cpu {
				err = fmt.Errorf("Mach-O for %v, want %v", m.Cpu, cpu)
			}
			return err
		})
	}
}
