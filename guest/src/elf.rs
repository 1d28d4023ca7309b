//! What a module's `.ko` holds, read from its ELF section headers.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The sections the kernel's module loader takes KUnit suites from
/// (`kernel/module/main.c`): a module's `#[kunit_tests]` (Rust) or
/// `kunit_test_suites()` (C) put their suites there, and KUnit runs them
/// when the module loads.
const KUNIT_SECTIONS: [&str; 2] = [".kunit_test_suites", ".kunit_init_test_suites"];

/// Whether the module file at `ko` carries a KUnit suite.
pub fn has_kunit_suites(ko: &Path) -> io::Result<bool> {
    let file = File::open(ko)?;
    let sections = section_sizes(&file)?;
    Ok(sections
        .iter()
        .any(|(name, size)| *size > 0 && KUNIT_SECTIONS.contains(&name.as_str())))
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a 64-bit little-endian ELF file: {what}"),
    )
}

fn read_at(file: &impl FileExt, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// Section header fields of ELF64: sh_name, sh_link, sh_offset, sh_size.
struct Section {
    name: u32,
    link: u32,
    offset: u64,
    size: u64,
}

const SECTION_HEADER: usize = 64;
/// `e_shstrndx` saying that the index is in section 0's `sh_link`.
const SHN_XINDEX: u16 = 0xffff;

/// Every section of a 64-bit little-endian ELF file, as (name, size).
fn section_sizes(file: &impl FileExt) -> io::Result<Vec<(String, u64)>> {
    let header = read_at(file, 0, 64)?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err(invalid("its header"));
    }
    let shoff = u64_at(&header, 0x28);
    let shentsize = usize::from(u16_at(&header, 0x3a));
    if shoff == 0 || shentsize < SECTION_HEADER {
        return Err(invalid("no section header table"));
    }
    let section = |i: u64| -> io::Result<Section> {
        let offset = i
            .checked_mul(shentsize as u64)
            .and_then(|o| o.checked_add(shoff))
            .ok_or_else(|| invalid("a section header beyond the file"))?;
        let b = read_at(file, offset, SECTION_HEADER)?;
        Ok(Section {
            name: u32_at(&b, 0),
            link: u32_at(&b, 40),
            offset: u64_at(&b, 24),
            size: u64_at(&b, 32),
        })
    };
    // Past 0xff00 sections, the count and the names' index are in section 0.
    let first = section(0)?;
    let count = match u16_at(&header, 0x3c) {
        0 => first.size,
        n => u64::from(n),
    };
    let names_index = match u16_at(&header, 0x3e) {
        SHN_XINDEX => u64::from(first.link),
        i => u64::from(i),
    };
    let names = section(names_index)?;
    let names = read_at(
        file,
        names.offset,
        usize::try_from(names.size).map_err(|_| invalid("its section names"))?,
    )?;
    (0..count)
        .map(|i| {
            let s = section(i)?;
            let start = usize::try_from(s.name)
                .ok()
                .filter(|&start| start < names.len())
                .ok_or_else(|| invalid("a section name beyond the names"))?;
            let end = names[start..]
                .iter()
                .position(|&b| b == 0)
                .map_or(names.len(), |n| start + n);
            Ok((
                String::from_utf8_lossy(&names[start..end]).into_owned(),
                s.size,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relocatable ELF64 file with the sections given as (name, size):
    /// a null section first and the section names last, as a `.ko` has.
    fn elf(sections: &[(&str, u64)]) -> Vec<u8> {
        let mut names = vec![0u8];
        let mut name_at = Vec::new();
        for (name, _) in sections.iter().chain([&(".shstrtab", 0)]) {
            name_at.push(names.len() as u32);
            names.extend_from_slice(name.as_bytes());
            names.push(0);
        }
        let count = sections.len() + 2;
        let names_offset = 64u64;
        let shoff = (64 + names.len() as u64).next_multiple_of(8);
        let mut out = b"\x7fELF\x02\x01\x01".to_vec();
        out.resize(64, 0);
        out[16..18].copy_from_slice(&1u16.to_le_bytes()); // ET_REL
        out[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        out[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        out[0x3c..0x3e].copy_from_slice(&(count as u16).to_le_bytes());
        out[0x3e..0x40].copy_from_slice(&((count - 1) as u16).to_le_bytes());
        out.extend_from_slice(&names);
        out.resize(shoff as usize, 0);
        let header = |name: u32, offset: u64, size: u64| {
            let mut h = vec![0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[24..32].copy_from_slice(&offset.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            h
        };
        out.extend(header(0, 0, 0));
        for (i, (_, size)) in sections.iter().enumerate() {
            out.extend(header(name_at[i], 0, *size));
        }
        out.extend(header(
            name_at[sections.len()],
            names_offset,
            names.len() as u64,
        ));
        out
    }

    /// [`has_kunit_suites`] of a file holding `bytes`.
    fn kunit(bytes: Vec<u8>) -> io::Result<bool> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static FILES: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!("lkmlab-guest-elf-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let ko = dir.join(format!("m{}.ko", FILES.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&ko, bytes)?;
        let result = has_kunit_suites(&ko);
        let _ = std::fs::remove_file(&ko);
        result
    }

    #[test]
    fn a_module_with_a_kunit_section_has_suites() {
        let sections = [(".text", 64), (".kunit_test_suites", 8), (".data", 16)];
        assert!(kunit(elf(&sections)).unwrap());
        assert!(kunit(elf(&[(".kunit_init_test_suites", 8)])).unwrap());
    }

    #[test]
    fn a_module_without_one_or_with_an_empty_one_has_none() {
        assert!(!kunit(elf(&[(".text", 64), (".rela.text", 24)])).unwrap());
        assert!(!kunit(elf(&[(".kunit_test_suites", 0)])).unwrap());
        // The relocations of the section are not the section.
        assert!(!kunit(elf(&[(".rela.kunit_test_suites", 24)])).unwrap());
        assert!(!kunit(elf(&[(".kunit_test_suites_x", 8)])).unwrap());
    }

    #[test]
    fn what_is_not_an_elf64_file_is_an_error() {
        assert!(kunit(b"not a module".to_vec()).is_err());
        let mut bytes = elf(&[(".kunit_test_suites", 8)]);
        bytes[4] = 1; // ELFCLASS32
        assert!(kunit(bytes).is_err());
        let bytes = elf(&[(".kunit_test_suites", 8)]);
        assert!(kunit(bytes[..100].to_vec()).is_err(), "truncated");
    }
}
