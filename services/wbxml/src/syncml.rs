//! SyncML's vocabularies (OMA DS 1.2, "SyncML Representation Protocol" and "Device
//! Information" WBXML tables): a SyncML message has the SyncML page (0) and the Meta
//! Information page (1); a device information document (DevInf, sent inside a message's
//! Data as opaque WBXML) has its own code space, one page. Each tag is a token from 0x05;
//! "" marks a token left unassigned. SyncML 1.0, 1.1 and 1.2 share the pages (later
//! versions add tags at the end); each version's documents carry its formal public
//! identifier, as clients send them.

use crate::{Page, PublicId, Vocabulary};

/// A SyncML message's pages.
pub mod page {
    pub const SYNCML: u8 = 0;
    pub const METINF: u8 = 1;
}

pub static PAGES: [Page; 2] = [
    Page {
        namespace: "SYNCML:SYNCML1.2",
        tags: &[
            "Add",
            "Alert",
            "Archive",
            "Atomic",
            "Chal",
            "Cmd",
            "CmdID",
            "CmdRef",
            "Copy",
            "Cred",
            "Data",
            "Delete",
            "Exec",
            "Final",
            "Get",
            "Item",
            "Lang",
            "LocName",
            "LocURI",
            "Map",
            "MapItem",
            "Meta",
            "MsgID",
            "MsgRef",
            "NoResp",
            "NoResults",
            "Put",
            "Replace",
            "RespURI",
            "Results",
            "Search",
            "Sequence",
            "SessionID",
            "SftDel",
            "Source",
            "SourceRef",
            "Status",
            "Sync",
            "SyncBody",
            "SyncHdr",
            "SyncML",
            "Target",
            "TargetRef",
            "",
            "VerDTD",
            "VerProto",
            "NumberOfChanges",
            "MoreData",
            "Field",
            "Filter",
            "Record",
            "FilterType",
            "SourceParent",
            "TargetParent",
            "Move",
            "Correlator",
        ],
    },
    Page {
        namespace: "syncml:metinf",
        tags: &[
            "Anchor",
            "EMI",
            "Format",
            "FreeID",
            "FreeMem",
            "Last",
            "Mark",
            "MaxMsgSize",
            "Mem",
            "MetInf",
            "Next",
            "NextNonce",
            "SharedMem",
            "Size",
            "Type",
            "Version",
            "MaxObjSize",
            "FieldLevel",
        ],
    },
];

const fn message(public_id: &'static str) -> Vocabulary {
    Vocabulary {
        name: "SyncML",
        version: 0x02,
        public_id: PublicId::Text(public_id),
        pages: &PAGES,
    }
}

pub static SYNCML_1_0: Vocabulary = message("-//SYNCML//DTD SyncML 1.0//EN");
pub static SYNCML_1_1: Vocabulary = message("-//SYNCML//DTD SyncML 1.1//EN");
pub static SYNCML_1_2: Vocabulary = message("-//SYNCML//DTD SyncML 1.2//EN");

pub static DEVINF_PAGES: [Page; 1] = [Page {
    namespace: "syncml:devinf",
    tags: &[
        "CTCap",
        "CTType",
        "DataStore",
        "DataType",
        "DevID",
        "DevInf",
        "DevTyp",
        "DisplayName",
        "DSMem",
        "Ext",
        "FwV",
        "HwV",
        "Man",
        "MaxGUIDSize",
        "MaxID",
        "MaxMem",
        "Mod",
        "OEM",
        "ParamName",
        "PropName",
        "Rx",
        "Rx-Pref",
        "SharedMem",
        "MaxSize",
        "SourceRef",
        "SwV",
        "SyncCap",
        "SyncType",
        "Tx",
        "Tx-Pref",
        "ValEnum",
        "VerCT",
        "VerDTD",
        "XNam",
        "XVal",
        "UTC",
        "SupportNumberOfChanges",
        "SupportLargeObjs",
        "Property",
        "PropParam",
        "MaxOccur",
        "NoTruncate",
        "",
        "Filter-Rx",
        "FilterCap",
        "FilterKeyword",
        "FieldLevel",
        "SupportHierarchicalSync",
    ],
}];

const fn devinf(public_id: &'static str) -> Vocabulary {
    Vocabulary {
        name: "SyncML DevInf",
        version: 0x02,
        public_id: PublicId::Text(public_id),
        pages: &DEVINF_PAGES,
    }
}

pub static DEVINF_1_1: Vocabulary = devinf("-//SYNCML//DTD DevInf 1.1//EN");
pub static DEVINF_1_2: Vocabulary = devinf("-//SYNCML//DTD DevInf 1.2//EN");
