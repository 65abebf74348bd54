//! xenstored over its unix socket, driven by the dom0-tools client (no Xen needed).

use dom0_tools::xenstored::server::{Options, Server};
use dom0_tools::xs::{Error, Xs};
use xenstore_wire::Errno;

#[test]
fn socket_clients_share_one_store() {
    let dir = std::env::temp_dir().join(format!("xenstored-test-{}", std::process::id()));
    let sock = dir.join("socket");
    let mut server = Server::new(Options { socket: sock.clone(), dom0_ring: false, verbose: false }).unwrap();
    std::thread::spawn(move || loop {
        server.step(50).unwrap();
    });
    let mut a = Xs::open_at(&sock).unwrap();
    let mut b = Xs::open_at(&sock).unwrap();
    a.write(0, "/local/domain/0/name", b"Domain-0").unwrap();
    assert_eq!(b.read_string(0, "/local/domain/0/name").unwrap(), "Domain-0");
    assert!(matches!(b.read(0, "/nope"), Err(Error::Xs(Errno::ENOENT))));
    b.watch("/local/domain", "w").unwrap();
    assert_eq!(b.next_event().unwrap(), ("/local/domain".into(), "w".into()));
    a.write(0, "/local/domain/1/name", b"guest").unwrap();
    // Parents are created on the way.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.push(b.next_event().unwrap().0);
    }
    assert_eq!(seen, ["/local/domain/1", "/local/domain/1/name"]);
    let tx = a.transaction_start().unwrap();
    a.write(tx, "/t", b"1").unwrap();
    assert!(matches!(b.read(0, "/t"), Err(Error::Xs(Errno::ENOENT))));
    a.transaction_end(tx, true).unwrap();
    assert_eq!(b.read(0, "/t").unwrap(), b"1");
    assert_eq!(a.directory(0, "/local/domain").unwrap(), ["0", "1"]);
    assert_eq!(a.get_domain_path(7).unwrap(), "/local/domain/7");
    let _ = std::fs::remove_dir_all(&dir);
}
