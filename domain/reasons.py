"""The closed list of reason codes and alarm kinds, each with a Japanese and English sentence.

Every event row carries one reason code; docs/reason-codes.md is generated from here
(``python -m domain.reasons``), so the list and the documentation cannot drift apart.
"""

from __future__ import annotations

import enum
from typing import NamedTuple


class Sentence(NamedTuple):
    ja: str
    en: str


class Reason(enum.StrEnum):
    # granted
    GRANTED = "granted"
    GRANTED_ANTIPASSBACK_WARNING = "granted_antipassback_warning"
    GRANTED_ESCORTED = "granted_escorted"
    GRANTED_CARD_PIN = "granted_card_pin"  # card + the right PIN: the factors used
    GRANTED_CARD_PURPOSE = "granted_card_purpose"  # card + a purpose code typed
    GRANTED_CARD_PIN_PURPOSE = "granted_card_pin_purpose"
    EXIT = "exit"
    EXIT_BUTTON = "exit_button"
    # waiting for more input (pending rows)
    PIN_WANTED = "pin_wanted"
    ESCORT_WANTED = "escort_wanted"
    SECOND_PERSON_WANTED = "second_person_wanted"
    PURPOSE_WANTED = "purpose_wanted"
    PURPOSE_INVALID = "purpose_invalid"
    PURPOSE_TIMEOUT = "purpose_timeout"
    # credential
    UNKNOWN_CARD = "unknown_card"
    CREDENTIAL_INACTIVE = "credential_inactive"
    CREDENTIAL_LOST = "credential_lost"
    CREDENTIAL_NOT_YET_VALID = "credential_not_yet_valid"
    CREDENTIAL_EXPIRED = "credential_expired"
    CREDENTIAL_LOCKED = "credential_locked"
    # PIN
    PIN_WRONG = "pin_wrong"
    PIN_TIMEOUT = "pin_timeout"
    PIN_NOT_SET = "pin_not_set"
    PIN_LOCKOUT = "pin_lockout"
    # person
    PERSON_INACTIVE = "person_inactive"
    NOT_DESIGNATED = "not_designated"
    TRAINING_MISSING = "training_missing"
    TRAINING_EXPIRED = "training_expired"
    # authorization
    NO_AUTHORIZATION = "no_authorization"
    AUTHORIZATION_NOT_YET_VALID = "authorization_not_yet_valid"
    AUTHORIZATION_EXPIRED = "authorization_expired"
    OUTSIDE_SCHEDULE = "outside_schedule"
    # visitors
    NO_ACTIVE_VISIT = "no_active_visit"
    VISIT_NOT_STARTED = "visit_not_started"
    VISIT_EXPIRED = "visit_expired"
    VISIT_WRONG_AREA = "visit_wrong_area"
    ESCORT_REQUIRED = "escort_required"
    ESCORT_NOT_ALLOWED = "escort_not_allowed"
    ESCORT_LIMIT = "escort_limit"
    DEVICE_NOT_PERMITTED = "device_not_permitted"
    # occupancy
    ANTIPASSBACK = "antipassback"
    TWO_PERSON_TIMEOUT = "two_person_timeout"
    # doors and system
    NOT_USED = "not_used"
    DOOR_OPENED = "door_opened"
    DOOR_CLOSED = "door_closed"
    DOOR_FORCED = "door_forced"
    DOOR_HELD = "door_held"
    DOOR_HELD_RESTORED = "door_held_restored"
    TAMPER = "tamper"
    TAMPER_RESTORED = "tamper_restored"
    READER_ONLINE = "reader_online"
    READER_OFFLINE = "reader_offline"
    FORGIVEN = "forgiven"
    # remote door control from the console (a manager's command; issue 13)
    REMOTE_UNLOCK = "remote_unlock"
    LOCKDOWN = "lockdown"
    LOCKDOWN_STARTED = "lockdown_started"
    LOCKDOWN_LIFTED = "lockdown_lifted"
    SNAPSHOT = "snapshot"
    TAILGATING = "tailgating"
    CAMERA_OFFLINE = "camera_offline"
    UNKNOWN_READER = "unknown_reader"
    SYSTEM_UNAVAILABLE = "system_unavailable"
    DATABASE_UNAVAILABLE = "database_unavailable"
    DATABASE_RESTORED = "database_restored"
    DOOR_CLAIMED = "door_claimed"  # start-up refused: another running controller has the door


REASON_TEXT: dict[Reason, Sentence] = {
    Reason.GRANTED: Sentence("入室を許可しました。", "Access granted."),
    Reason.GRANTED_ANTIPASSBACK_WARNING: Sentence(
        "許可しました（アンチパスバック警告: 入退の記録が一致しません）。",
        "Granted with an anti-passback warning: the in/out record does not match.",
    ),
    Reason.GRANTED_ESCORTED: Sentence(
        "責任者の立会いにより許可しました。", "Granted with an escort present."
    ),
    Reason.GRANTED_CARD_PIN: Sentence(
        "カードと暗証番号で入室を許可しました。", "Access granted on card and PIN."
    ),
    Reason.GRANTED_CARD_PURPOSE: Sentence(
        "カードと用件番号で入室を許可しました。", "Access granted on card and purpose code."
    ),
    Reason.GRANTED_CARD_PIN_PURPOSE: Sentence(
        "カード・暗証番号・用件番号で入室を許可しました。",
        "Access granted on card, PIN and purpose code.",
    ),
    Reason.EXIT: Sentence("退室を記録しました。", "Exit recorded."),
    Reason.EXIT_BUTTON: Sentence("退室ボタンで解錠しました。", "Opened by the exit button."),
    Reason.PIN_WANTED: Sentence("暗証番号を入力してください。", "Enter your PIN."),
    Reason.ESCORT_WANTED: Sentence(
        "立会者のカードを待っています。", "Waiting for the escort's card."
    ),
    Reason.SECOND_PERSON_WANTED: Sentence(
        "二人目の入室者を待っています。", "Waiting for a second person (two-person rule)."
    ),
    Reason.PURPOSE_WANTED: Sentence(
        "用件番号を入力してください。", "Enter the purpose code of your entry."
    ),
    Reason.PURPOSE_INVALID: Sentence("用件番号が登録されていません。", "Unknown purpose code."),
    Reason.PURPOSE_TIMEOUT: Sentence(
        "用件番号の入力がありませんでした。", "No purpose code was entered in time."
    ),
    Reason.UNKNOWN_CARD: Sentence("登録されていないカードです。", "The card is not registered."),
    Reason.CREDENTIAL_INACTIVE: Sentence("カードが無効です。", "The card is inactive."),
    Reason.CREDENTIAL_LOST: Sentence(
        "紛失・停止されたカードです。", "The card is reported lost or blocked."
    ),
    Reason.CREDENTIAL_NOT_YET_VALID: Sentence(
        "カードの有効期間前です。", "The card is not valid yet."
    ),
    Reason.CREDENTIAL_EXPIRED: Sentence("カードの有効期限切れです。", "The card has expired."),
    Reason.CREDENTIAL_LOCKED: Sentence(
        "暗証番号の誤入力によりカードがロックされています。",
        "The card is locked after wrong PINs.",
    ),
    Reason.PIN_WRONG: Sentence("暗証番号が違います。", "Wrong PIN."),
    Reason.PIN_TIMEOUT: Sentence(
        "暗証番号の入力がありませんでした。", "No PIN was entered in time."
    ),
    Reason.PIN_NOT_SET: Sentence("暗証番号が設定されていません。", "No PIN is set for this card."),
    Reason.PIN_LOCKOUT: Sentence(
        "暗証番号の誤入力が続いたためロックしました。",
        "Too many wrong PINs: the card is now locked.",
    ),
    Reason.PERSON_INACTIVE: Sentence("利用者が無効です。", "The person is inactive."),
    Reason.NOT_DESIGNATED: Sentence(
        "特定個人情報の取扱者として指定されていません。",
        "The person is not designated handling staff.",
    ),
    Reason.TRAINING_MISSING: Sentence("研修の受講記録がありません。", "No training on record."),
    Reason.TRAINING_EXPIRED: Sentence(
        "研修の受講から12か月を過ぎています。", "The last training is more than 12 months old."
    ),
    Reason.NO_AUTHORIZATION: Sentence(
        "この管理区域への入室権限がありません。", "No authorization for this managed area."
    ),
    Reason.AUTHORIZATION_NOT_YET_VALID: Sentence(
        "入室権限の有効期間前です。", "The authorization is not valid yet."
    ),
    Reason.AUTHORIZATION_EXPIRED: Sentence(
        "入室権限の有効期限切れです。", "The authorization has expired."
    ),
    Reason.OUTSIDE_SCHEDULE: Sentence(
        "入室可能な時間帯ではありません。", "Outside the authorized schedule."
    ),
    Reason.NO_ACTIVE_VISIT: Sentence(
        "有効な来訪登録がありません。", "No active visit for this badge."
    ),
    Reason.VISIT_NOT_STARTED: Sentence("来訪予定時刻前です。", "The visit has not started yet."),
    Reason.VISIT_EXPIRED: Sentence("来訪の予定時間を過ぎています。", "The visit window has ended."),
    Reason.VISIT_WRONG_AREA: Sentence(
        "この来訪はこの管理区域のものではありません。", "The visit is for another area."
    ),
    Reason.ESCORT_REQUIRED: Sentence(
        "部外者の入退室には責任者の立会いが必要です。",
        "A visitor needs an escort present.",
    ),
    Reason.ESCORT_NOT_ALLOWED: Sentence(
        "この方は立会者になれません。", "This person may not escort this visitor here."
    ),
    Reason.ESCORT_LIMIT: Sentence(
        "立会者一人あたりの来訪者数の上限です。", "The escort already has the maximum visitors."
    ),
    Reason.DEVICE_NOT_PERMITTED: Sentence(
        "許可されていない機器・電子媒体の持込みが申告されています。",
        "A declared device is not permitted in this area.",
    ),
    Reason.ANTIPASSBACK: Sentence(
        "入退の記録が一致しません（アンチパスバック）。",
        "Anti-passback: the in/out record does not match.",
    ),
    Reason.TWO_PERSON_TIMEOUT: Sentence(
        "二人目の入室者が来ませんでした。", "No second person came in time."
    ),
    Reason.NOT_USED: Sentence(
        "解錠されましたが扉は開きませんでした。", "Unlocked, but the door was not opened."
    ),
    Reason.DOOR_OPENED: Sentence("扉が開きました。", "Door opened."),
    Reason.DOOR_CLOSED: Sentence("扉が閉まりました。", "Door closed."),
    Reason.DOOR_FORCED: Sentence("扉がこじ開けられました。", "Door forced open."),
    Reason.DOOR_HELD: Sentence("扉が開いたままです。", "Door held open too long."),
    Reason.DOOR_HELD_RESTORED: Sentence("開放状態が解消しました。", "Held-open door closed."),
    Reason.TAMPER: Sentence("機器のいたずらを検知しました。", "Tamper detected."),
    Reason.TAMPER_RESTORED: Sentence("いたずら検知が解消しました。", "Tamper restored."),
    Reason.READER_ONLINE: Sentence("カードリーダーが接続されました。", "Reader online."),
    Reason.READER_OFFLINE: Sentence("カードリーダーが応答しません。", "Reader offline."),
    Reason.FORGIVEN: Sentence(
        "警備員が入退状態をリセットしました。", "A guard reset the in/out state."
    ),
    Reason.REMOTE_UNLOCK: Sentence(
        "管理者の遠隔操作で一時解錠しました（カードなし）。",
        "Unlocked for a moment by a manager from the console (no card).",
    ),
    Reason.LOCKDOWN: Sentence(
        "管理区域が閉鎖（ロックダウン）中のため入室できません。",
        "The area is locked down: no card may enter.",
    ),
    Reason.LOCKDOWN_STARTED: Sentence(
        "管理区域を閉鎖（ロックダウン）しました。退室は自由です。",
        "The area was locked down; leaving stays free.",
    ),
    Reason.LOCKDOWN_LIFTED: Sentence(
        "管理区域の閉鎖（ロックダウン）を解除しました。", "The area's lockdown was lifted."
    ),
    Reason.SNAPSHOT: Sentence("監視カメラの画像を記録しました。", "Camera snapshot recorded."),
    Reason.TAILGATING: Sentence(
        "許可より多くの人が通過しました（共連れの疑い）。",
        "More people passed than were granted (suspected tailgating).",
    ),
    Reason.CAMERA_OFFLINE: Sentence("監視カメラが応答しません。", "Camera offline."),
    Reason.UNKNOWN_READER: Sentence(
        "扉に割り当てられていないリーダーです。", "The reader belongs to no door."
    ),
    Reason.SYSTEM_UNAVAILABLE: Sentence(
        "システムが利用できないため施錠を維持しました。",
        "The system is unavailable: the door stays locked.",
    ),
    Reason.DATABASE_UNAVAILABLE: Sentence(
        "データベースに書き込めません。記録は制御装置に保管しています。",
        "The database cannot be written: rows are kept on the controller's disk.",
    ),
    Reason.DOOR_CLAIMED: Sentence(
        "この扉は稼働中の別の制御装置が管理しています。制御装置を起動しません。",
        "Another running controller runs this door: the controller does not start.",
    ),
    Reason.DATABASE_RESTORED: Sentence(
        "データベースが復旧し、保管した記録を書き込みました。",
        "The database is back: the rows kept meanwhile were written.",
    ),
}


class AlarmKind(enum.StrEnum):
    DOOR_FORCED = "door_forced"
    DOOR_HELD = "door_held"
    TAMPER = "tamper"
    DURESS = "duress"
    PIN_LOCKOUT = "pin_lockout"
    ESCORT_LEFT_VISITOR = "escort_left_visitor"
    TWO_PERSON_VIOLATION = "two_person_violation"
    READER_OFFLINE = "reader_offline"
    CAMERA_OFFLINE = "camera_offline"
    TAILGATING = "tailgating"
    VISITOR_STILL_INSIDE = "visitor_still_inside"
    PERSON_STILL_INSIDE = "person_still_inside"
    INTEGRITY_FAILURE = "integrity_failure"
    DATABASE_UNAVAILABLE = "database_unavailable"


ALARM_TEXT: dict[AlarmKind, Sentence] = {
    AlarmKind.DOOR_FORCED: Sentence("扉のこじ開け", "Door forced open"),
    AlarmKind.DOOR_HELD: Sentence("扉の長時間開放", "Door held open"),
    AlarmKind.TAMPER: Sentence("機器のいたずら", "Tamper"),
    AlarmKind.DURESS: Sentence("脅迫コード入力", "Duress PIN entered"),
    AlarmKind.PIN_LOCKOUT: Sentence("暗証番号の連続誤入力", "Repeated wrong PINs"),
    AlarmKind.ESCORT_LEFT_VISITOR: Sentence(
        "立会者が来訪者を残して退室", "Escort left while their visitor is inside"
    ),
    AlarmKind.TWO_PERSON_VIOLATION: Sentence("二人ルール違反", "Two-person rule violated"),
    AlarmKind.READER_OFFLINE: Sentence("カードリーダー応答なし", "Reader offline"),
    AlarmKind.CAMERA_OFFLINE: Sentence("カメラ応答なし", "Camera offline"),
    AlarmKind.TAILGATING: Sentence("共連れの疑い", "Suspected tailgating"),
    AlarmKind.VISITOR_STILL_INSIDE: Sentence(
        "終業時刻に来訪者が在室", "Visitor still inside at end of day"
    ),
    AlarmKind.PERSON_STILL_INSIDE: Sentence(
        "終業時刻に在室者あり", "Person still inside at end of day"
    ),
    AlarmKind.INTEGRITY_FAILURE: Sentence("記録の改ざん検知", "Log integrity failure"),
    AlarmKind.DATABASE_UNAVAILABLE: Sentence(
        "データベース停止（扉は保持情報で判定中）",
        "Database unavailable (doors decide from the controller's memory)",
    ),
}

# Alarms that sound the siren/lamp; the others are shown on consoles only.
AUDIBLE_ALARMS = frozenset(
    {
        AlarmKind.DOOR_FORCED,
        AlarmKind.DOOR_HELD,
        AlarmKind.TAMPER,
        AlarmKind.ESCORT_LEFT_VISITOR,
        AlarmKind.TWO_PERSON_VIOLATION,
        AlarmKind.TAILGATING,
    }
)


def sentence(reason: str, locale: str = "ja") -> str:
    """The human sentence of a reason or alarm code; an unknown code is returned as is."""
    for table, enum_cls in ((REASON_TEXT, Reason), (ALARM_TEXT, AlarmKind)):
        try:
            s = table[enum_cls(reason)]  # type: ignore[index]
        except (ValueError, KeyError):
            continue
        return s.ja if locale.startswith("ja") else s.en
    return reason


def markdown() -> str:
    lines = ["# Reason codes and alarm kinds / 理由コードと警報の種類", ""]
    lines += ["Generated by `python -m domain.reasons`.", ""]
    lines += ["## Reason codes / 理由コード", "", "| code | 日本語 | English |", "|---|---|---|"]
    lines += [f"| `{r.value}` | {REASON_TEXT[r].ja} | {REASON_TEXT[r].en} |" for r in Reason]
    lines += ["", "## Alarm kinds / 警報の種類", "", "| kind | 日本語 | English | siren |"]
    lines += ["|---|---|---|---|"]
    lines += [
        f"| `{a.value}` | {ALARM_TEXT[a].ja} | {ALARM_TEXT[a].en} | "
        f"{'yes' if a in AUDIBLE_ALARMS else 'no'} |"
        for a in AlarmKind
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
