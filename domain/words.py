"""Words for the stored codes that reason codes and alarm kinds (domain.reasons) do not cover:
directions, decisions, device kinds, audit actions and audit targets, in Japanese and
English. Pages, CSV files and PDFs all take their words from here, so an operator never
reads ``granted`` or ``authorization.approve``.

``word(table, code, locale)`` returns the code itself for an unknown code (a new code shows
up as itself rather than as nothing).
"""

from __future__ import annotations

from domain.reasons import Sentence

DIRECTIONS = {
    "in": Sentence("入室", "In"),
    "out": Sentence("退室", "Out"),
}
DECISIONS = {
    "granted": Sentence("許可", "Granted"),
    "denied": Sentence("拒否", "Denied"),
    "pending": Sentence("確認待ち", "Pending"),
    "info": Sentence("情報", "Info"),
}
# DeviceStatus.kind: what the controller reports on
DEVICE_KINDS = {
    "reader": Sentence("カードリーダー", "Card reader"),
    "door": Sentence("扉", "Door"),
    "camera": Sentence("カメラ", "Camera"),
    "controller": Sentence("制御装置", "Controller"),
    "keypad": Sentence("テンキー", "Keypad"),
    "lockdown": Sentence("管理区域の閉鎖", "Area lockdown"),
}
AUDIT_TARGETS = {
    "approval": Sentence("二者承認", "Approval"),
    "person": Sentence("人物", "Person"),
    "credential": Sentence("カード", "Card"),
    "authorization": Sentence("入室許可", "Authorization"),
    "area": Sentence("管理区域", "Managed area"),
    "door": Sentence("扉", "Door"),
    "visit": Sentence("来訪", "Visit"),
    "alarm": Sentence("警報", "Alarm"),
    "incident": Sentence("インシデント", "Incident"),
    "operator": Sentence("操作者", "Operator"),
    "api_token": Sentence("APIトークン", "API token"),
    "setting": Sentence("サイト設定", "Site setting"),
    "events": Sentence("入退室記録", "Event log"),
    "audit": Sentence("操作記録", "Audit log"),
    "log": Sentence("記録", "Log"),
    "report": Sentence("月次報告", "Monthly report"),
    "review": Sentence("アクセス権の見直し", "Access review"),
    "retention": Sentence("保存期間", "Retention"),
    "page": Sentence("画面", "Page"),
}
AUDIT_ACTIONS = {
    "login.password_ok": Sentence("パスワード確認（第二要素待ち）", "Password accepted"),
    "approval.request": Sentence("二者承認の依頼", "Approval requested"),
    "approval.approve": Sentence("二者承認の承認", "Approval given"),
    "approval.reject": Sentence("二者承認の却下", "Approval rejected"),
    "approval.cancel": Sentence("二者承認の取り下げ", "Approval request withdrawn"),
    "approval.done": Sentence("承認された操作の実行", "Approved operation carried out"),
    "approval.expire": Sentence("二者承認の期限切れ", "Approval request expired"),
    "credential.unlock": Sentence("カードのロック解除", "Card unlocked"),
    "operator.administrator": Sentence("管理者の追加・昇格", "Administrator added or promoted"),
    "operator.manager": Sentence("保護責任者の追加・昇格", "Manager added or promoted"),
    "login.code_failed": Sentence("確認コードの誤り", "Wrong verification code"),
    "login.code_replayed": Sentence("使用済み確認コードの再使用", "Verification code replayed"),
    "login.second_factor_lockout": Sentence(
        "確認コードの誤りによる中断", "Stopped after wrong codes"
    ),
    "login.second_factor_timeout": Sentence("確認コード入力の時間切れ", "Code step timed out"),
    "login_failed_repeated": Sentence("ログイン失敗（繰り返し）", "Repeated failed sign-ins"),
    "login_refused_repeated": Sentence("ログイン拒否（繰り返し）", "Repeated refused sign-ins"),
    "login.code_failed_repeated": Sentence(
        "確認コードの誤り（繰り返し）", "Repeated wrong verification codes"
    ),
    "login.code_refused_repeated": Sentence(
        "確認コードの拒否（繰り返し）", "Repeated refused verification codes"
    ),
    "login_throttle": Sentence("ログインの待機", "Sign-in delayed (throttled)"),
    "mfa.enrol": Sentence("二要素認証の登録", "Second factor enrolled"),
    "mfa.reenrol": Sentence("二要素認証の再登録", "Second factor replaced"),
    "mfa.disable": Sentence("二要素認証の解除", "Second factor turned off"),
    "mfa.reset": Sentence("二要素認証のリセット", "Second factor reset"),
    "mfa.challenge": Sentence("確認コードの要求", "Verification code asked"),
    "mfa.reauth": Sentence("再認証", "Re-authenticated"),
    "mfa.recovery_code_used": Sentence("回復コードの使用", "Recovery code used"),
    "mfa.recovery_codes_renewed": Sentence("回復コードの再発行", "Recovery codes renewed"),
    "reauth": Sentence("再認証", "Re-authenticated"),
    "reauth_failed": Sentence("再認証の失敗", "Re-authentication failed"),
    "visit.badge_printed": Sentence("来訪者バッジの印刷", "Visitor badge printed"),
    "visit.exit_recorded": Sentence("退室の記録（受付）", "Exit recorded at the desk"),
    "visit.photo": Sentence("来訪者の写真", "Visitor photo taken"),
    "login": Sentence("ログイン", "Signed in"),
    "login_failed": Sentence("ログイン失敗", "Sign-in failed"),
    "login_locked": Sentence("ロック中のログイン試行", "Sign-in while locked"),
    "login_lockout": Sentence("ログインのロック", "Account locked after failed sign-ins"),
    "logout": Sentence("ログアウト", "Signed out"),
    "session_expired": Sentence("無操作によるセッション終了", "Session ended (idle)"),
    "password_change": Sentence("パスワード変更", "Password changed"),
    "password_change_failed": Sentence("パスワード変更の失敗", "Password change failed"),
    "access_refused": Sentence("権限のない操作を拒否", "Refused: no permission"),
    "person.create": Sentence("人物の登録", "Person created"),
    "person.update": Sentence("人物の変更", "Person changed"),
    "person.activate": Sentence("人物の有効化", "Person activated"),
    "person.deactivate": Sentence("人物の無効化", "Person deactivated"),
    "people.import": Sentence("職員の一括登録 (CSV)", "Staff imported (CSV)"),
    "people.export": Sentence("職員一覧の出力 (CSV)", "Staff list exported (CSV)"),
    "training.create": Sentence("研修受講の登録", "Training recorded"),
    "credential.create": Sentence("カードの登録", "Card registered"),
    "credential.reissue": Sentence("カードの再発行", "Card reissued"),
    "credential.state": Sentence("カード状態の変更", "Card state changed"),
    "credential.pin_set": Sentence("暗証番号の設定", "PIN set"),
    "credential.pin_reset": Sentence("暗証番号の再設定", "PIN reset"),
    "authorization.create": Sentence("入室許可の申請", "Authorization requested"),
    "authorization.approve": Sentence("入室許可の承認", "Authorization approved"),
    "authorization.revoke": Sentence("入室許可の取消", "Authorization revoked"),
    "authorization.edit": Sentence("入室許可の変更", "Authorization changed"),
    "authorization.change_request": Sentence(
        "承認済み入室許可の変更申請", "Change of an approved authorization asked"
    ),
    "antipassback.forgive": Sentence("在室状態のリセット", "In/out state reset"),
    "visit.create": Sentence("来訪の登録", "Visit registered"),
    "visit.badge_issued": Sentence("来訪者バッジの発行", "Visitor badge issued"),
    "visit.sign_out": Sentence("来訪者の退館", "Visitor signed out"),
    "alarm.acknowledge": Sentence("警報の確認", "Alarm acknowledged"),
    "alarm.clear": Sentence("警報の解除", "Alarm cleared"),
    "incident.close": Sentence("インシデントの完了", "Incident closed"),
    "events.export": Sentence("入退室記録の出力 (CSV)", "Event log exported (CSV)"),
    "audit.export": Sentence("操作記録の出力 (CSV)", "Audit log exported (CSV)"),
    "integrity.verify": Sentence("記録の改ざん検査", "Log integrity verified"),
    "report.monthly": Sentence("月次報告の表示", "Monthly report viewed"),
    "report.monthly_csv": Sentence("月次報告の出力 (CSV)", "Monthly report exported (CSV)"),
    "report.monthly_pdf": Sentence("月次報告の出力 (PDF)", "Monthly report exported (PDF)"),
    "review.keep": Sentence("見直し: 継続", "Review: kept"),
    "review.revoke": Sentence("見直し: 取消", "Review: revoked"),
    "review.designation_keep": Sentence("見直し: 指定を継続", "Review: designation kept"),
    "review.designation_revoke": Sentence("見直し: 指定を取消", "Review: designation revoked"),
    "retention.purge": Sentence("保存期間経過分の削除", "Expired records purged"),
    "retention.purge_refused": Sentence("削除の拒否", "Purge refused"),
    "area.update": Sentence("管理区域の変更", "Managed area changed"),
    "door.update": Sentence("扉の設定変更", "Door changed"),
    "door.remote_unlock": Sentence("扉の遠隔一時解錠", "Door unlocked remotely"),
    "area.lockdown": Sentence("管理区域の閉鎖（ロックダウン）", "Area locked down"),
    "area.lockdown_lift": Sentence("管理区域の閉鎖の解除", "Area lockdown lifted"),
    "setting.update": Sentence("サイト設定の変更", "Site setting changed"),
    "operator.create": Sentence("操作者の作成", "Operator created"),
    "operator.update": Sentence("操作者の変更", "Operator changed"),
    "operator.password_reset": Sentence("操作者のパスワード再設定", "Operator password reset"),
    "api_token.create": Sentence("APIトークンの発行", "API token issued"),
    "api_token.revoke": Sentence("APIトークンの失効", "API token revoked"),
}
# before/after keys of the audit log, shown next to their values
AUDIT_FIELDS = {
    "kind": Sentence("種別", "Kind"),
    "params": Sentence("内容", "Parameters"),
    "note": Sentence("備考", "Note"),
    "decision_note": Sentence("判断の理由", "Reason for the decision"),
    "reason": Sentence("理由", "Reason"),
    "result": Sentence("結果", "Result"),
    "decision": Sentence("判断", "Decision"),
    "requested_by": Sentence("依頼者", "Requested by"),
    "requested_at": Sentence("依頼日時", "Requested at"),
    "decided_by": Sentence("判断者", "Decided by"),
    "decided_at": Sentence("判断日時", "Decided at"),
    "approved_by": Sentence("承認者", "Approved by"),
    "approved_at": Sentence("承認日時", "Approved at"),
    "second_factor": Sentence("第二要素", "Second factor"),
    "failures": Sentence("失敗回数", "Failures"),
    "left": Sentence("残り", "Left"),
    "recovery_codes": Sentence("回復コード数", "Recovery codes"),
    "count": Sentence("件数", "Count"),
    "with": Sentence("手段", "With"),
    "approval": Sentence("二者承認", "Approval"),
    "value": Sentence("値", "Value"),
    "expires_at": Sentence("有効期限", "Expires"),
    "api_token_id": Sentence("APIトークン", "API token"),
    "channel": Sentence("経路", "Channel"),
    "name": Sentence("氏名", "Name"),
    "name_kana": Sentence("フリガナ", "Kana"),
    "organization": Sentence("所属", "Organisation"),
    "employee_no": Sentence("社員番号", "Employee number"),
    "designated": Sentence("取扱者指定", "Designated"),
    "active": Sentence("有効", "Active"),
    "email": Sentence("メールアドレス", "E-mail"),
    "state": Sentence("状態", "State"),
    "comment": Sentence("コメント", "Comment"),
    "command": Sentence("制御装置への指示", "Controller command"),
    "valid_from": Sentence("有効期間の開始", "Valid from"),
    "valid_until": Sentence("有効期間の終了", "Valid until"),
    "schedule": Sentence("時間帯", "Schedule"),
    "default_purpose": Sentence("既定の用件", "Default purpose"),
    "person_id": Sentence("人物", "Person"),
    "area_id": Sentence("管理区域", "Managed area"),
    "technology": Sentence("カード方式", "Card technology"),
    "card_id": Sentence("カードID", "Card id"),
    "label": Sentence("表示番号", "Label"),
    "temporary": Sentence("一時カード", "Temporary"),
    "pin": Sentence("暗証番号", "PIN"),
    "password": Sentence("パスワード", "Password"),
    "course": Sentence("研修名", "Course"),
    "completed_on": Sentence("受講日", "Completed on"),
    "purpose": Sentence("用件", "Purpose"),
    "role": Sentence("役割", "Role"),
    "path": Sentence("画面", "Page"),
    "method": Sentence("操作", "Method"),
    "rows": Sentence("行数", "Rows"),
    "created": Sentence("新規", "New"),
    "updated": Sentence("変更", "Updated"),
    "unchanged": Sentence("変更なし", "Unchanged"),
    "file": Sentence("ファイル", "File"),
    "filter": Sentence("条件", "Filter"),
    "door": Sentence("扉", "Door"),
    "area": Sentence("管理区域", "Managed area"),
    "expires_in": Sentence("実行期限（秒）", "Carried out within (s)"),
}
# the same key means another thing on another target: an area's or a door's ``name`` is its
# name (名称), not a person's name (氏名)
AUDIT_FIELDS_BY_TARGET = {
    "area": {
        "name": Sentence("管理区域名", "Area name"),
        "name_en": Sentence("管理区域名（英語）", "Area name (English)"),
    },
    "door": {"name": Sentence("扉の名称", "Door name")},
    "operator": {"display_name": Sentence("表示名", "Display name")},
}
# area and door settings, as the administration page labels them
AUDIT_FIELDS.update(
    {
        "permitted_devices": Sentence("持込みを許可する機器", "Permitted devices"),
        "antipassback": Sentence("アンチパスバック", "Anti-passback"),
        "escort_policy": Sentence("立会いの方式", "Escort policy"),
        "visitor_exit_needs_escort": Sentence(
            "部外者の退室に立会者が必要", "Visitors exit with an escort"
        ),
        "max_visitors_per_escort": Sentence("立会者一人あたりの部外者数", "Visitors per escort"),
        "two_person_rule": Sentence("二人ルール", "Two-person rule"),
        "offline": Sentence("データベース停止時の判定", "While the database is unavailable"),
        "strike_seconds": Sentence("解錠時間（秒）", "Unlock time (s)"),
        "held_open_seconds": Sentence("開放警報までの時間（秒）", "Held-open limit (s)"),
        "pin_required": Sentence("暗証番号が必要", "PIN required"),
        "pin_timeout_seconds": Sentence("暗証番号の入力待ち（秒）", "PIN wait (s)"),
        "escort_window_seconds": Sentence("立会いの待ち時間（秒）", "Escort window (s)"),
        "ask_purpose": Sentence("用件番号の入力", "Ask the purpose at the keypad"),
        "snapshot_on_entry": Sentence("入室時のカメラ画像", "Camera snapshot on entry"),
        "username": Sentence("ユーザー名", "User name"),
    }
)
TABLES = {
    "direction": DIRECTIONS,
    "decision": DECISIONS,
    "device_kind": DEVICE_KINDS,
    "audit_action": AUDIT_ACTIONS,
    "audit_target": AUDIT_TARGETS,
    "audit_field": AUDIT_FIELDS,
}


def field_word(target: str | None, key: str, locale: str = "ja") -> str:
    """The word for an audit row's before/after key, as it reads on that row's target."""
    s = AUDIT_FIELDS_BY_TARGET.get(target or "", {}).get(key)
    if s is None:
        return word("audit_field", key, locale)
    return s.ja if locale.startswith("ja") else s.en


def word(table: str, code: str | None, locale: str = "ja") -> str:
    """The word for ``code`` in ``table`` (a key of TABLES); the code itself if unknown."""
    if not code:
        return ""
    s = TABLES[table].get(code)
    if s is None:
        return code
    return s.ja if locale.startswith("ja") else s.en
