//! The data caches of the core, read once per process from CPUID: the packed GEMM sizes its
//! blocks from them (see [`Blocking`](super::gemm::Blocking)).

use std::sync::OnceLock;

/// Sizes of the core's data caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Caches {
    /// L1 data cache, bytes.
    pub l1d: usize,
    /// L1 data cache associativity (ways).
    pub l1d_ways: usize,
    /// L2 cache, bytes.
    pub l2: usize,
}

impl Caches {
    /// What a CPU that does not say gets: the smallest common x86 core of the last decade
    /// (32 KiB 8-way L1d, 1 MiB L2).
    pub(crate) const FALLBACK: Caches = Caches {
        l1d: 32 << 10,
        l1d_ways: 8,
        l2: 1 << 20,
    };

    /// This CPU's caches (read once per process), or [`FALLBACK`](Caches::FALLBACK) when
    /// CPUID does not say or its cores differ (a hybrid part).
    pub(crate) fn get() -> Caches {
        static CACHES: OnceLock<Caches> = OnceLock::new();
        *CACHES.get_or_init(|| detect().unwrap_or(Caches::FALLBACK))
    }

    /// From a list of `(type, level, ways, bytes)` descriptors: the level-1 data cache and
    /// the level-2 data or unified cache; `None` unless both are there and plausible.
    fn from_descriptors(descriptors: impl IntoIterator<Item = Descriptor>) -> Option<Caches> {
        let (mut l1, mut l2) = (None, None);
        for d in descriptors {
            match (d.level, d.kind) {
                (1, Kind::Data) => l1 = Some((d.bytes, d.ways)),
                (2, Kind::Data | Kind::Unified) => l2 = Some(d.bytes),
                _ => {}
            }
        }
        let ((l1d, l1d_ways), l2) = (l1?, l2?);
        let plausible = (8 << 10..=4 << 20).contains(&l1d)
            && (1..=64).contains(&l1d_ways)
            && (64 << 10..=256 << 20).contains(&l2);
        plausible.then_some(Caches { l1d, l1d_ways, l2 })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Data,
    Instruction,
    Unified,
}

/// One cache as CPUID describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Descriptor {
    kind: Kind,
    level: u32,
    ways: usize,
    bytes: usize,
}

impl Descriptor {
    /// Decodes one sub-leaf of the deterministic cache parameters (leaf 4 on Intel,
    /// 0x8000_001D on AMD: the same layout); `None` at the end of the list.
    fn decode(eax: u32, ebx: u32, ecx: u32) -> Option<Descriptor> {
        let kind = match eax & 0x1f {
            0 => return None,
            1 => Kind::Data,
            2 => Kind::Instruction,
            _ => Kind::Unified,
        };
        let ways = (ebx >> 22) as usize + 1;
        let partitions = ((ebx >> 12) & 0x3ff) as usize + 1;
        let line = (ebx & 0xfff) as usize + 1;
        let sets = ecx as usize + 1;
        // Checked: a hypervisor may report anything (then the size is implausible anyway).
        let bytes = ways
            .checked_mul(partitions)
            .and_then(|b| b.checked_mul(line))
            .and_then(|b| b.checked_mul(sets))
            .unwrap_or(usize::MAX);
        Some(Descriptor {
            kind,
            level: (eax >> 5) & 0x7,
            ways,
            bytes,
        })
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code, unused_unsafe)]
fn detect() -> Option<Caches> {
    use std::arch::x86_64::{__cpuid, __cpuid_count, CpuidResult};
    // SAFETY: CPUID exists on every x86-64 CPU and only reads identification registers
    // (the intrinsics are safe functions on recent toolchains, hence `unused_unsafe`).
    let cpuid = |leaf: u32, sub: u32| -> CpuidResult { unsafe { __cpuid_count(leaf, sub) } };
    let v = unsafe { __cpuid(0) };
    let mut vendor = [0u8; 12];
    for (chunk, reg) in vendor.chunks_mut(4).zip([v.ebx, v.edx, v.ecx]) {
        chunk.copy_from_slice(&reg.to_le_bytes());
    }
    let amd_like = &vendor == b"AuthenticAMD" || &vendor == b"HygonGenuine";
    let leaf = if amd_like {
        // Leaf 0x8000_001D exists when the extended maximum reaches it and the topology
        // extensions bit (0x8000_0001 ECX bit 22) is set.
        let ext = unsafe { __cpuid(0x8000_0000) }.eax;
        let topology = unsafe { __cpuid(0x8000_0001) }.ecx >> 22 & 1 == 1;
        if ext < 0x8000_001d || !topology {
            return None;
        }
        0x8000_001d
    } else {
        if v.eax < 4 {
            return None;
        }
        // A hybrid part (CPUID 7 EDX bit 15: performance and efficiency cores with other
        // caches) would block, and so round, by whichever core ran the first product: the
        // fallback instead, the same on every core and every run.
        if v.eax >= 7 && unsafe { __cpuid_count(7, 0) }.edx >> 15 & 1 == 1 {
            return None;
        }
        4
    };
    Caches::from_descriptors((0..16).map_while(|sub| {
        let r = cpuid(leaf, sub);
        Descriptor::decode(r.eax, r.ebx, r.ecx)
    }))
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Option<Caches> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `(eax, ebx, ecx)` of one cache descriptor (64-byte lines, one partition), as
    /// [`Descriptor::decode`] reads them.
    fn encode(kind: u32, level: u32, ways: u32, sets: u32) -> (u32, u32, u32) {
        (kind | level << 5, (ways - 1) << 22 | 63, sets - 1)
    }

    /// A Zen 5's list (leaf 0x8000_001D), encoded back from what it reported: 48 KiB 12-way
    /// L1d, 32 KiB L1i, 1 MiB 16-way L2, 32 MiB L3.
    #[test]
    fn decodes_a_zen5_list() {
        let regs = [
            encode(1, 1, 12, 64),
            encode(2, 1, 8, 64),
            encode(3, 2, 16, 1024),
            encode(3, 3, 16, 32768),
            (0, 0, 0),
        ];
        let list = regs
            .iter()
            .map_while(|&(a, b, c)| Descriptor::decode(a, b, c));
        let caches = Caches::from_descriptors(list).unwrap();
        assert_eq!(
            caches,
            Caches {
                l1d: 48 << 10,
                l1d_ways: 12,
                l2: 1 << 20
            }
        );
    }

    #[test]
    fn an_incomplete_or_implausible_list_is_none() {
        let l1 = Descriptor::decode(1 | 1 << 5, 7 << 22 | 63, 63).unwrap();
        assert_eq!(l1.bytes, 32 << 10);
        assert_eq!(Caches::from_descriptors([l1]), None);
        let tiny_l2 = Descriptor::decode(3 | 2 << 5, 63, 0).unwrap();
        assert_eq!(Caches::from_descriptors([l1, tiny_l2]), None);
        // Every field at its largest: no overflow, just an implausible size.
        let junk = Descriptor::decode(3 | 2 << 5, u32::MAX, u32::MAX).unwrap();
        assert_eq!(Caches::from_descriptors([l1, junk]), None);
        assert_eq!(Descriptor::decode(0, 123, 456), None);
    }

    /// What Linux reports for cpu0 (`/sys/devices/system/cpu/cpu0/cache`, decoded by the
    /// kernel from the same CPUID leaves): `None` where it does not say.
    fn from_sysfs() -> Option<Caches> {
        let dir = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
        let read = |index: &std::path::Path, f: &str| {
            std::fs::read_to_string(index.join(f))
                .ok()
                .map(|s| s.trim().to_string())
        };
        let (mut l1, mut l2) = (None, None);
        for entry in std::fs::read_dir(dir).ok()? {
            let index = entry.ok()?.path();
            let (Some(level), Some(kind), Some(size), Some(ways)) = (
                read(&index, "level"),
                read(&index, "type"),
                read(&index, "size"),
                read(&index, "ways_of_associativity"),
            ) else {
                continue;
            };
            let bytes = match size.strip_suffix('K') {
                Some(k) => k.parse::<usize>().ok()? << 10,
                None => size.strip_suffix('M')?.parse::<usize>().ok()? << 20,
            };
            match (level.as_str(), kind.as_str()) {
                ("1", "Data") => l1 = Some((bytes, ways.parse().ok()?)),
                ("2", "Data" | "Unified") => l2 = Some(bytes),
                _ => {}
            }
        }
        let ((l1d, l1d_ways), l2) = (l1?, l2?);
        Some(Caches { l1d, l1d_ways, l2 })
    }

    /// Our CPUID decoding against the kernel's, where both report (a hybrid part or a CPU
    /// without the cache leaves has `detect() == None` and runs on the fallback).
    #[test]
    fn cpuid_caches_match_linux_sysfs_where_both_report() {
        match (detect(), from_sysfs()) {
            (Some(ours), Some(kernel)) => assert_eq!(ours, kernel),
            (ours, kernel) => eprintln!("not compared: CPUID {ours:?}, sysfs {kernel:?}"),
        }
        let c = Caches::get();
        assert!(c == Caches::FALLBACK || Some(c) == detect(), "{c:?}");
    }
}
