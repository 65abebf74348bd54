//! The storage behind a virtual disk.

use crate::SECTOR_SIZE;

/// Why a storage operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The store cannot do this at all (flush without a cache, discard on a device that
    /// cannot): the request is answered `BLKIF_RSP_EOPNOTSUPP` for flush, barrier and
    /// discard, `BLKIF_RSP_ERROR` for reads and writes.
    Unsupported,
    /// The range lies (partly) outside the store.
    OutOfRange,
    /// An I/O error.
    Io,
}

/// A block device in 512-byte sectors.
///
/// [`Backend`](crate::Backend) checks every range against [`sector_count`](Self::sector_count)
/// before calling `read`/`write`/`discard`, and passes buffers whose length is a multiple
/// of 512 and at most `BATCH` pages (the const parameter of the `Backend`).
pub trait BlockStore {
    /// Size in 512-byte sectors (the xenbus `sectors` key).
    fn sector_count(&self) -> u64;
    /// Logical sector size in bytes (`sector-size`): a power of two, at least 512.
    /// Requests whose start or segment lengths are not multiples of it are refused.
    fn sector_size(&self) -> u32 {
        SECTOR_SIZE as u32
    }
    /// Physical sector size in bytes (`physical-sector-size`).
    fn physical_sector_size(&self) -> u32 {
        self.sector_size()
    }
    /// Reads `buf.len() / 512` sectors starting at `sector`.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), StoreError>;
    /// Writes `data.len() / 512` sectors starting at `sector`.
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), StoreError>;
    /// Makes every completed write durable (`BLKIF_OP_FLUSH_DISKCACHE`).
    fn flush(&mut self) -> Result<(), StoreError>;
    /// Discards `nr_sectors` sectors from `sector` (`BLKIF_OP_DISCARD`); `secure` asks for
    /// a secure erase.
    fn discard(&mut self, sector: u64, nr_sectors: u64, secure: bool) -> Result<(), StoreError>;
}

impl<S: BlockStore + ?Sized> BlockStore for &mut S {
    fn sector_count(&self) -> u64 {
        (**self).sector_count()
    }
    fn sector_size(&self) -> u32 {
        (**self).sector_size()
    }
    fn physical_sector_size(&self) -> u32 {
        (**self).physical_sector_size()
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        (**self).read(sector, buf)
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), StoreError> {
        (**self).write(sector, data)
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        (**self).flush()
    }
    fn discard(&mut self, sector: u64, nr_sectors: u64, secure: bool) -> Result<(), StoreError> {
        (**self).discard(sector, nr_sectors, secure)
    }
}

/// A RAM disk over a caller-provided buffer (its length rounded down to whole sectors).
/// Flush succeeds (there is no cache); discard zeroes the range.
#[derive(Debug)]
pub struct RamDisk<'a> {
    bytes: &'a mut [u8],
}

impl<'a> RamDisk<'a> {
    /// A disk of `bytes.len() / 512` sectors.
    pub fn new(bytes: &'a mut [u8]) -> Self {
        let len = bytes.len() - bytes.len() % SECTOR_SIZE;
        Self {
            bytes: &mut bytes[..len],
        }
    }

    /// The disk's contents.
    pub fn bytes(&self) -> &[u8] {
        self.bytes
    }

    fn range(&self, sector: u64, len: usize) -> Result<core::ops::Range<usize>, StoreError> {
        if !len.is_multiple_of(SECTOR_SIZE) {
            return Err(StoreError::OutOfRange);
        }
        let start = usize::try_from(sector)
            .ok()
            .and_then(|s| s.checked_mul(SECTOR_SIZE))
            .ok_or(StoreError::OutOfRange)?;
        let end = start.checked_add(len).ok_or(StoreError::OutOfRange)?;
        if end > self.bytes.len() {
            return Err(StoreError::OutOfRange);
        }
        Ok(start..end)
    }
}

impl BlockStore for RamDisk<'_> {
    fn sector_count(&self) -> u64 {
        (self.bytes.len() / SECTOR_SIZE) as u64
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        let r = self.range(sector, buf.len())?;
        buf.copy_from_slice(&self.bytes[r]);
        Ok(())
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), StoreError> {
        let r = self.range(sector, data.len())?;
        self.bytes[r].copy_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    fn discard(&mut self, sector: u64, nr_sectors: u64, _secure: bool) -> Result<(), StoreError> {
        if nr_sectors == 0 {
            return Ok(());
        }
        let len = usize::try_from(nr_sectors)
            .ok()
            .and_then(|n| n.checked_mul(SECTOR_SIZE))
            .ok_or(StoreError::OutOfRange)?;
        let r = self.range(sector, len)?;
        self.bytes[r].fill(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_disk_bounds() {
        let mut mem = [0u8; 4 * 512 + 100];
        let mut d = RamDisk::new(&mut mem);
        assert_eq!(d.sector_count(), 4);
        d.write(3, &[7u8; 512]).unwrap();
        assert_eq!(d.write(3, &[7u8; 1024]), Err(StoreError::OutOfRange));
        assert_eq!(d.write(u64::MAX, &[7u8; 512]), Err(StoreError::OutOfRange));
        assert_eq!(d.read(0, &mut [0u8; 100]), Err(StoreError::OutOfRange));
        let mut b = [0u8; 512];
        d.read(3, &mut b).unwrap();
        assert_eq!(b, [7u8; 512]);
        d.discard(3, 1, false).unwrap();
        d.read(3, &mut b).unwrap();
        assert_eq!(b, [0u8; 512]);
        assert_eq!(d.discard(2, u64::MAX, false), Err(StoreError::OutOfRange));
        d.flush().unwrap();
    }
}
