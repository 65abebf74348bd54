//! xenstored for Linux dom0: the event loop ([`server`]) around the shared, I/O-free
//! store engine and server ring end in `xenstore-wire` (`store`, `server_ring`), which
//! pv-guest's xenstore domain uses too.

pub mod server;

pub use xenstore_wire::server_ring as ring;
pub use xenstore_wire::store;

impl ring::Page for crate::sys::Mapping {
    fn load_u32(&self, off: usize) -> u32 {
        crate::sys::Mapping::load_u32(self, off)
    }
    fn store_u32(&self, off: usize, v: u32) {
        crate::sys::Mapping::store_u32(self, off, v)
    }
    fn read(&self, off: usize, buf: &mut [u8]) {
        crate::sys::Mapping::read(self, off, buf)
    }
    fn write(&self, off: usize, data: &[u8]) {
        crate::sys::Mapping::write(self, off, data)
    }
}
