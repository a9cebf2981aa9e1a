//! Exchange ActiveSync. Today: the WBXML codec every command is carried in (`wbxml`), sans
//! I/O, with every code page of MS-ASWBXML.

pub mod wbxml;
