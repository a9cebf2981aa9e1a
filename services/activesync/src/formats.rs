//! What every command and class shares on the wire: the request line (MS-ASHTTP), WBXML
//! (MS-ASWBXML, with the wbxml crate) and the body and date forms (MS-ASAIRS, MS-ASDTYPE).

pub mod body;
pub mod request;
pub mod wbxml;
