//! Control of the office's other daemons from Bureau's accounts. Today: the web proxy
//! (Squid, `proxy`). Configurations are generated here, checked by the daemon itself
//! before they are installed, and installed by the privileged helper on the appliance.

pub mod proxy;
