"""The MS-ASWBXML code pages pyactivesync's tables lack, added to them on import: the
Calendar, Notes, MeetingResponse, Email2 and ValidateCert pages, and most of Tasks, AirSyncBase and
ResolveRecipients. The client still encodes and decodes; these are only its tables."""

from pyactivesync import _codepages as cp

# pyactivesync's tables lack the Calendar and Notes code pages and most of Tasks and
# AirSyncBase: added here from MS-ASWBXML 2.1.2.1 (tokens from 0x05 in this order; "" is
# an unassigned token).
PAGES = {
    "Calendar": (4, "Timezone AllDayEvent Attendees Attendee Email Name Body BodyTruncated BusyStatus "
                    "Categories Category CompressedRTF DtStamp EndTime Exception Exceptions Deleted "
                    "ExceptionStartTime Location MeetingStatus OrganizerEmail OrganizerName Recurrence "
                    "Type Until Occurrences Interval DayOfWeek DayOfMonth WeekOfMonth MonthOfYear "
                    "Reminder Sensitivity Subject StartTime UID AttendeeStatus AttendeeType - - - - - - - - "
                    "DisallowNewTimeProposal ResponseRequested AppointmentReplyTime ResponseType CalendarType "
                    "IsLeapMonth FirstDayOfWeek OnlineMeetingConfLink OnlineMeetingExternalLink ClientUid"),
    "Tasks": (9, "Body BodySize BodyTruncated Categories Category Complete DateCompleted DueDate "
                 "UtcDueDate Importance Recurrence Type Start Until Occurrences Interval DayOfMonth "
                 "DayOfWeek WeekOfMonth MonthOfYear Regenerate DeadOccur ReminderSet ReminderTime "
                 "Sensitivity StartDate UtcStartDate Subject"),
    "Notes": (23, "Subject MessageClass LastModifiedDate Categories Category"),
    "ResolveRecipients": (10, "ResolveRecipients Response Status Type Recipient DisplayName EmailAddress "
                              "Certificates Certificate MiniCertificate Options To CertificateRetrieval "
                              "RecipientCount MaxCertificates MaxAmbiguousRecipients CertificateCount "
                              "Availability StartTime EndTime MergedFreeBusy Picture MaxSize Data MaxPictures"),
    "Email2": (22, "UmCallerID UmUserNotes UmAttDuration UmAttOrder ConversationId ConversationIndex "
                   "LastVerbExecuted LastVerbExecutionTime ReceivedAsBcc Sender CalendarType IsLeapMonth "
                   "AccountId FirstDayOfWeek MeetingMessageType - IsDraft Bcc Send"),
    "ValidateCert": (11, "ValidateCert Certificates Certificate CertificateChain CheckCRL Status"),
    "MeetingResponse": (8, "CalendarId CollectionId MeetingResponse RequestId Request Result Status "
                           "UserResponse Version InstanceId - ProposedStartTime ProposedEndTime SendResponse"),
    "AirSyncBase": (17, "BodyPreference Type TruncationSize AllOrNone - Body Data EstimatedDataSize "
                        "Truncated Attachments Attachment DisplayName FileReference Method ContentId "
                        "ContentLocation IsInline NativeBodyType ContentType Preview BodyPartPreference "
                        "BodyPart Status Add Delete ClientId Content Location Annotation Street City "
                        "State Country PostalCode Latitude Longitude Accuracy Altitude AltitudeAccuracy "
                        "LocationUri InstanceId"),
}
for _page, (_num, _names) in PAGES.items():
    _tags = cp.CODEPAGES.setdefault(_page, {})
    for _i, _n in enumerate(_names.split()):
        if _n != "-":
            _tags.setdefault(_n, 0x05 + _i)
    cp.PAGE_INDEX[_page] = _num
    cp.PAGE_ORDER[_num] = _page
    cp.REVERSE[_num] = {tok & 0x3F: tag for tag, tok in _tags.items()}


