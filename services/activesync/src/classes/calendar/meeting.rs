//! Meetings: the MeetingRequest of an invitation mail, the user's answer on the event,
//! Outlook's GlobalObjectId, and the UIDs and names of new events.

use super::*;

/// The user's answer to an invitation: their PARTSTAT on the event, or from 14.1 on one
/// occurrence (`instance`), with any METHOD of the iTIP message it came in dropped.
pub fn respond(
    text: &str,
    partstat: &str,
    instance: Option<NaiveDateTime>,
    v: &View,
    now: NaiveDateTime,
) -> Result<String, ConvertError> {
    let mut vcal =
        Comp::parse(text).ok_or(ConvertError::Stored("the invitation is not readable"))?;
    vcal.remove(&["METHOD"]);
    let zones = Zones::of(text);
    let (mi, _) = events(&vcal).ok_or(ConvertError::Stored("the invitation has no event"))?;
    let target = match instance {
        Some(at) => override_at(&mut vcal, mi, at, &zones, &v.device)?,
        None => mi,
    };
    let ev = &mut vcal.subs[target];
    let mut answered = false;
    for p in ev.props.iter_mut() {
        let l = Line::parse(p);
        if l.name == "ATTENDEE" && v.me.contains(&address(&l.value)) {
            *p = bureau_groupware::contentline::set_param(p, "PARTSTAT", partstat);
            answered = true;
        }
    }
    if !answered {
        return Err("the user is not among the attendees".into());
    }
    stamp(ev, now);
    Ok(vcal.text())
}

/// Outlook's GlobalObjectId for a UID (MS-OXOCAL 2.2.1.27): an Outlook UID is that id in
/// hex; any other is wrapped as "vCal-Uid" data.
fn global_obj_id(uid: &str) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x04, 0x00, 0x00, 0x00, 0x82, 0x00, 0xE0, 0x00, 0x74, 0xC5, 0xB7, 0x10, 0x1A, 0x82, 0xE0,
        0x08,
    ];
    if uid.len() >= 32
        && uid.len().is_multiple_of(2)
        && let Ok(bytes) = (0..uid.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&uid[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
        && bytes.starts_with(&PREFIX)
    {
        return bytes;
    }
    let mut data = b"vCal-Uid".to_vec();
    data.extend_from_slice(&[1, 0, 0, 0]);
    data.extend_from_slice(uid.as_bytes());
    data.push(0);
    let mut out = PREFIX.to_vec();
    out.extend_from_slice(&[0; 4 + 8 + 8]);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    out
}

/// An invitation or cancellation (iTIP REQUEST or CANCEL) as the Email class's
/// MeetingRequest (MS-ASEMAIL 2.2.2.48), with the message class it gives the mail.
pub fn meeting_request(text: &str, v: &View) -> Option<(Element, &'static str)> {
    let vcal = Comp::parse(text)?;
    let class = match vcal
        .get("METHOD")?
        .value
        .trim()
        .to_ascii_uppercase()
        .as_str()
    {
        "REQUEST" => "IPM.Schedule.Meeting.Request",
        "CANCEL" => "IPM.Schedule.Meeting.Canceled",
        _ => return None,
    };
    let d = event_data(text, v, &BodyPreference::default())?;
    let e = |n: &'static str| Element::new(page::EMAIL, n);
    let long = |n: &str| {
        d.child_value(n)
            .and_then(|t| parse_time(&t))
            .map(|t| crate::formats::body::eas_date(t.and_utc().timestamp()))
    };
    let mut m = e("MeetingRequest")
        .with(e("AllDayEvent").text(d.child_value("AllDayEvent").unwrap_or_default()))
        .with(e("StartTime").text(long("StartTime")?))
        .with(e("DtStamp").text(long("DtStamp").or_else(|| long("StartTime"))?))
        .with(e("EndTime").text(long("EndTime")?))
        .with(e("InstanceType").text(if d.child("Recurrence").is_some() {
            "1"
        } else {
            "0"
        }));
    if let Some(loc) = d.child("Location") {
        m = m.with(if v.version >= 160 {
            loc.clone()
        } else {
            e("Location").text(loc.value())
        });
    }
    if let Some(org) = d.child_value("OrganizerEmail") {
        let who = match d.child_value("OrganizerName") {
            Some(n) => format!("\"{}\" <{org}>", n.replace('"', "'")),
            None => org,
        };
        m = m.with(e("Organizer").text(who));
    }
    if let Some(r) = d
        .child_value("Reminder")
        .and_then(|r| r.parse::<i64>().ok())
    {
        m = m.with(e("Reminder").text((r * 60).to_string()));
    }
    m = m.with(e("ResponseRequested").text(if class.ends_with("Request") { "1" } else { "0" }));
    if let Some(r) = d.child("Recurrence") {
        let mut rec = e("Recurrence");
        for c in r.elements() {
            if let Some(name) = crate::formats::wbxml::VOCABULARY.pages[page::EMAIL as usize]
                .tags
                .iter()
                .find(|t| **t == c.name)
            {
                rec = rec.with(e(name).text(c.value()));
            }
        }
        m = m.with(e("Recurrences").with(rec));
    }
    for (from, to) in [
        ("Sensitivity", "Sensitivity"),
        ("BusyStatus", "BusyStatus"),
        ("Timezone", "TimeZone"),
    ] {
        if let Some(x) = d.child_value(from) {
            m = m.with(e(to).text(x));
        }
    }
    let uid = d.child_value("UID")?;
    m = m.with(e("GlobalObjId").text(B64.encode(global_obj_id(&uid))));
    Some((m, class))
}

/// The event an invitation mail carries (its text/calendar part), if any.
pub fn invitation_of(message: &[u8]) -> Option<String> {
    use mail_parser::MimeHeaders;
    let m = bureau_core::mime::parse(message)?;
    m.parts.iter().find_map(|p| {
        let ct = p.content_type()?;
        let is_cal = ct.ctype().eq_ignore_ascii_case("text")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("calendar"));
        let text = std::str::from_utf8(p.contents()).ok()?;
        (is_cal && text.contains("BEGIN:VEVENT")).then(|| text.to_string())
    })
}

/// The UID of an iCalendar object's main component.
pub fn uid_of(text: &str) -> Option<String> {
    let vcal = Comp::parse(text)?;
    let (mi, _) = events(&vcal)?;
    text_of(&vcal.subs[mi], "UID")
}

/// A UID a device gave that can name the object (else one is made).
pub fn usable_uid(uid: Option<String>) -> Option<String> {
    uid.map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty() && u.len() <= 200 && u.chars().all(|c| c.is_ascii_graphic()))
}

/// The object's name for a UID: the UID itself when it is a safe path segment, else a
/// random one.
pub fn object_name(uid: &str) -> String {
    let safe = uid
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if safe && !uid.starts_with('.') {
        format!("{uid}.ics")
    } else {
        format!("{:032x}.ics", rand::random::<u128>())
    }
}
