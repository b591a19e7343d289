//! Client identity (stub until the decoders land).

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub proto: Option<&'static str>,
    pub user: Option<String>,
    pub host: Option<String>,
    pub display: Option<String>,
    pub pid: Option<String>,
    pub program: Option<String>,
    pub service: Option<String>,
    pub vendor_host: Option<String>,
    pub vendor_port: Option<u16>,
}

pub const IDENTITY_PEEK_BYTES: usize = 4096;

#[derive(Default)]
pub struct Sniffer {
    id: Identity,
    done: bool,
}

impl Sniffer {
    pub fn new() -> Sniffer {
        Sniffer::default()
    }
    pub fn client(&mut self, _chunk: &[u8]) {
        self.done = true;
    }
    pub fn server(&mut self, _chunk: &[u8]) {}
    pub fn client_eof(&mut self) {
        self.done = true;
    }
    pub fn server_eof(&mut self) {
        self.done = true;
    }
    pub fn expire(&mut self) {
        self.done = true;
    }
    pub fn is_done(&self) -> bool {
        self.done
    }
    pub fn identity(&self) -> &Identity {
        &self.id
    }
    pub fn vendor_port_seen(&self) -> Option<u16> {
        None
    }
}
