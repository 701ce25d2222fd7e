"""Every label of the workspace in English and Simplified Chinese: one table, one lookup.

Templates call ``t("key")``; a key missing from the table is an error in the tests
(``tests/workspace``), never a silent English word on a Chinese page. Pages added later (the
admin's settings) add their keys here.

It is over 400 lines because it is one table of every page's labels in both languages (one home
for the words, so a missing Chinese label is found in one place); the code is a few lines.
"""

from __future__ import annotations

from insights.waterfall_chart import TEXTS as WATERFALL_TEXTS

DEFAULT_LANG = "en"

TEXTS: dict[str, tuple[str, str]] = {
    # key: (English, Simplified Chinese)
    "app_name": ("churnwatch workspace", "churnwatch 工作台"),
    "nav_my_day": ("My day", "我的一天"),
    "nav_tasks": ("Tasks", "任务"),
    "nav_sign_out": ("Sign out", "退出登录"),
    "nav_language": ("Language", "语言"),
    "lang_en": ("English", "English"),
    "lang_zh": ("中文", "中文"),
    "switch": ("Switch", "切换"),
    "signed_in_as": ("Signed in as", "当前用户"),
    "role_csm": ("CSM", "客户成功经理"),
    "role_lead": ("Lead", "主管"),
    "role_admin": ("Admin", "管理员"),
    "sign_in": ("Sign in", "登录"),
    "username": ("User (e-mail or name)", "用户（邮箱或姓名）"),
    "password": ("Password", "密码"),
    "bad_login": ("Wrong user or password.", "用户名或密码错误。"),
    "rate_limited": ("Too many failed sign-ins. Try again in {minutes} minutes.",
                     "登录失败次数过多，请 {minutes} 分钟后再试。"),
    "forbidden": ("You may not see this page.", "您无权查看此页面。"),
    "not_found": ("Not found.", "未找到。"),
    "csrf_failed": ("The form expired or did not come from this site. Reload the page and try again.",
                    "表单已过期或不是来自本站，请刷新页面后重试。"),
    "error": ("Error", "错误"),
    "back": ("Back", "返回"),
    # my day
    "my_accounts": ("My accounts", "我的客户"),
    "team_accounts": ("Team accounts", "团队客户"),
    "all_accounts": ("All accounts", "全部客户"),
    "my_tasks": ("My tasks", "我的任务"),
    "showing_riskiest": ("The {shown} riskiest of {total}, by expected MRR loss.",
                         "按预期 MRR 损失排列，显示 {total} 个中风险最高的 {shown} 个。"),
    "showing_riskiest_no_mrr": ("The {shown} riskiest of {total}, by health (no MRR column).",
                                "按健康分排列（无 MRR 列），显示 {total} 个中风险最高的 {shown} 个。"),
    "no_mrr_column": ("no MRR column", "无 MRR 列"),
    "showing_first": ("The first {shown} of {total}: the tasks board has them all.",
                      "显示 {total} 个中的前 {shown} 个：任务看板列出全部。"),
    "account": ("Account", "客户"),
    "health": ("Health", "健康分"),
    "tier": ("Tier", "等级"),
    "change": ("Change", "变化"),
    "top_reason": ("Top reason", "首要原因"),
    "mrr": ("MRR", "MRR"),
    "expected_loss": ("Expected MRR loss", "预期 MRR 损失"),
    "csm": ("CSM", "客户成功经理"),
    "due": ("Due", "截止时间"),
    "overdue": ("Overdue", "已逾期"),
    "status": ("Status", "状态"),
    "action": ("Action", "行动"),
    "owner": ("Owner", "负责人"),
    "no_scores": ("No published scores yet: run `churnwatch score`.", "尚无已发布的评分：请运行 `churnwatch score`。"),
    "no_accounts": ("No accounts.", "没有客户。"),
    "no_tasks": ("No tasks.", "没有任务。"),
    "churned": ("Churned", "已流失"),
    "lapsed": ("Lapsed", "续订中断"),
    "lapsed_note": ("its term ended on {day} and no term has started since; a renewal within the {grace}-day grace "
                    "period would keep it a customer",
                    "其订阅期于 {day} 结束，此后未开始新的订阅期；在 {grace} 天宽限期内续订仍可保留为客户"),
    "new_score": ("new", "新"),
    "scored_as_of": ("Scored as of", "评分日期"),
    # account page
    "health_trend": ("Health trend", "健康分趋势"),
    "reasons": ("Reasons", "风险原因"),
    "strengths": ("Strengths", "优势"),
    "signals": ("Signals (latest snapshot)", "信号（最新快照）"),
    "signal": ("Signal", "信号"),
    "value": ("Value", "数值"),
    "tasks": ("Tasks", "任务"),
    "emails": ("E-mails sent", "已发送邮件"),
    "subject": ("Subject", "主题"),
    "sent_at": ("Sent", "发送时间"),
    "tags": ("Tags", "标签"),
    "sequences": ("Sequences", "序列"),
    "interventions": ("Interventions and notes", "干预与备注"),
    "log_intervention": ("Log an intervention", "记录一次干预"),
    "playbook": ("Playbook", "应对方案"),
    "note": ("Note", "备注"),
    "save": ("Save", "保存"),
    "when": ("When", "时间"),
    "by": ("By", "记录人"),
    "none": ("None.", "无。"),
    "exit_interview": ("Exit interview", "离职访谈"),
    "category": ("Category", "类别"),
    "avoidable": ("Avoidable", "可避免"),
    "yes": ("yes", "是"),
    "no": ("no", "否"),
    "unknown": ("unknown", "未知"),
    "logged": ("Intervention logged.", "干预已记录。"),
    # tasks board
    "tasks_board": ("Tasks board", "任务看板"),
    "filter": ("Filter", "筛选"),
    "all": ("all", "全部"),
    "active": ("active", "进行中"),
    "only_overdue": ("overdue only", "仅逾期"),
    "escalated": ("Escalated", "已升级"),
    "escalation_level": ("Escalation level {level}", "升级级别 {level}"),
    "plan": ("Plan", "计划"),
    "draft_plan": ("Draft a plan", "起草计划"),
    "approve": ("Approve", "批准"),
    "assign": ("Assign the next action", "分配下一步行动"),
    "assign_to": ("To (user)", "分配给（用户）"),
    "next_action": ("Next action", "下一步行动"),
    "mark_done": ("Done", "完成"),
    "cancel": ("Cancel", "取消"),
    "cancel_reason": ("Reason", "原因"),
    "illegal_move": ("This step is not allowed from {status}. Allowed: {allowed}.",
                     "当前状态 {status} 不允许此操作。允许：{allowed}。"),
    "none_final": ("none (final)", "无（已结束）"),
    "approve_lead_only": ("Only a lead or an admin approves plans.", "只有主管或管理员可以批准计划。"),
    "moved": ("Task {id}: {status}.", "任务 {id}：{status}。"),
    "status_open": ("open", "待处理"),
    "status_plan_drafted": ("plan drafted", "计划已起草"),
    "status_approved": ("approved", "已批准"),
    "status_action_assigned": ("action assigned", "行动已分配"),
    "status_done": ("done", "已完成"),
    "status_cancelled": ("cancelled", "已取消"),
    "tier_change_worse": ("worse", "变差"),
    "tier_change_better": ("better", "变好"),
    "tier_change_unchanged": ("unchanged", "不变"),
    # admin: settings without code (workspace.admin)
    "nav_settings": ("Settings", "设置"),
    "admin_settings": ("Settings", "设置"),
    "admin_history": ("Settings history", "设置历史"),
    "admin_version_in_effect": ("Version {version} in effect (over churnwatch.yaml).",
                                "当前生效：版本 {version}（覆盖 churnwatch.yaml）。"),
    "admin_no_version": ("No saved version: churnwatch.yaml is in effect.", "尚无保存的版本：churnwatch.yaml 生效。"),
    "admin_help": ("A saved change is used by the next command and the next request, without a restart. The data "
                   "source and the operational store's address stay in churnwatch.yaml.",
                   "保存的修改无需重启，下一次命令和请求即生效。数据源和运营库地址仍以 churnwatch.yaml 为准。"),
    "admin_invalid": ("{count} invalid value(s): see the fields marked below. Nothing was saved.",
                      "{count} 个值无效：见下方标出的字段。未保存任何内容。"),
    "admin_section_alert_rules": ("Alert rules", "预警规则"),
    "admin_section_playbooks": ("Playbooks per tier", "各风险等级的应对方案"),
    "admin_section_email": ("E-mail and templates", "邮件与模板"),
    "admin_section_webhooks": ("Webhooks", "Webhook 通知"),
    "admin_section_tags": ("Tags", "标签"),
    "admin_section_sequences": ("Sequences", "再激活序列"),
    "admin_section_tasks": ("Tasks and escalation", "任务与升级"),
    "admin_section_monitoring": ("Monitoring thresholds", "监控阈值"),
    "admin_secret_kept": ("hidden; leave empty to keep", "已隐藏；留空则保持不变"),
    "admin_yaml": ("Edit the whole section as YAML (add or remove items)", "以 YAML 编辑整个部分（增加或删除条目）"),
    "admin_yaml_help": ("Used instead of the fields above when changed. *** keeps a saved secret.",
                        "修改后将代替上面的字段。*** 表示保留已保存的密钥。"),
    "admin_comment": ("Comment", "备注"),
    "admin_save": ("Save a new version", "保存为新版本"),
    "admin_saved": ("Saved as version {version} ({count} value(s) changed).",
                    "已保存为版本 {version}（修改了 {count} 个值）。"),
    "admin_nothing_changed": ("Nothing changed: no version saved.", "没有修改：未保存新版本。"),
    "admin_restored": ("Version {old} restored as version {version}.", "已将版本 {old} 恢复为版本 {version}。"),
    "admin_version": ("Version", "版本"),
    "admin_saved_at": ("Saved at", "保存时间"),
    "admin_saved_by": ("By", "修改人"),
    "admin_changed": ("Changed", "修改内容"),
    "admin_current": ("in effect", "生效中"),
    "admin_first_version": ("first saved version", "首个保存的版本"),
    "admin_restored_from": ("restores version {old}", "恢复自版本 {old}"),
    "admin_restore": ("Restore this version", "恢复此版本"),
    # portfolio: the manager's Portfolio page (workspace.portfolio_page)
    "nav_portfolio": ("Portfolio", "客户组合"),
    "pf_accounts": ("Accounts", "客户数"),
    "pf_at_risk": ("MRR at risk", "风险 MRR"),
    "pf_no_mrr": ("No MRR column in these scores (a flat table's): no MRR and no MRR at risk to show; "
                  "groups by number of accounts.", "这些评分没有 MRR 列（表格数据）：无 MRR 和风险 MRR 可显示；"
                  "各组按客户数排列。"),
    "pf_share": ("At-risk share", "风险占比"),
    "pf_at_risk_help": ("MRR at risk is the expected MRR loss (MRR × churn probability of the latest score), over the "
                        "accounts that are still customers.",
                        "风险 MRR 即预期 MRR 损失（MRR × 最新评分的流失概率），只计仍为客户的账户。"),
    "pf_churned_note": ("{count} churned accounts not counted", "{count} 个已流失客户未计入"),
    "pf_by_tier": ("By tier", "按风险等级"),
    "pf_by_csm": ("By CSM", "按客户成功经理"),
    "pf_by_segment": ("By segment", "按客户细分"),
    "pf_segment_column": ("Segment by", "细分依据"),
    "pf_show": ("Show", "显示"),
    "pf_no_segments": ("No segment column in the snapshots (or the store is busy: reload in a minute).",
                       "快照中没有细分列（或数据库正忙：请一分钟后刷新）。"),
    "pf_dim_segment": ("Segment", "细分市场"),
    "pf_dim_plan": ("Plan (subscription)", "订阅套餐"),
    "pf_dim_industry": ("Industry", "行业"),
    "pf_dim_region": ("Region", "地区"),
    "pf_dim_size_band": ("Company size", "公司规模"),
    "pf_dim_channel": ("Sales channel", "销售渠道"),
    "pf_movements": ("Tier movements since the previous score", "自上次评分以来的等级变化"),
    "pf_movements_help": ("Rows: the tier at the previous score; columns: the tier now (accounts still customers).",
                          "行：上次评分时的等级；列：当前等级（仍为客户的账户）。"),
    "pf_movements_legend": ("▲ worse than before, ▼ better.", "▲ 比之前变差，▼ 变好。"),
    "pf_before_now": ("Before → now", "之前 → 现在"),
    "pf_previous_new": ("no previous score", "无上次评分"),
    "pf_total": ("Total", "合计"),
    "pf_history": ("Health distribution over time", "健康分布随时间的变化"),
    "pf_history_help": ("Accounts per tier at each scoring date:", "每个评分日期各风险等级的客户数："),
    "pf_tasks": ("Open and overdue tasks per CSM", "各客户成功经理的未完成与逾期任务"),
    "pf_open_tasks": ("Open tasks", "未完成任务"),
    # review pages (workspace.review_pages: the exit-interview form, the interviews list, the churn review)
    "nav_review": ("Churn review", "流失复盘"),
    "nav_interviews": ("Exit interviews", "离职访谈记录"),
    "ri_record": ("Record the exit interview", "记录离职访谈"),
    "ri_intro": ("Ask the five questions. \"Suggest a category\" shows the suggested reason category and avoidable "
                 "flag for you to confirm or change before saving.",
                 "请询问以下五个问题。点击“给出建议类别”后会显示建议的原因类别和是否可避免，请确认或修改后再保存。"),
    "ri_existing": ("An interview is recorded for the churn of {when}; saving for that churn date replaces it.",
                    "已记录 {when} 流失的访谈；以该流失日期保存将替换原记录。"),
    "ri_churned_at": ("Churn date", "流失日期"),
    "ri_interviewed_on": ("Interview date", "访谈日期"),
    "ri_interviewer": ("Interviewer", "访谈人"),
    "ri_main_reason": ("Main reason", "主要原因"),
    "ri_suggest": ("Suggest a category", "给出建议类别"),
    "ri_suggested": ("Suggested", "建议"),
    "ri_basis": ("Keywords found", "识别到的关键词"),
    "ri_no_keyword": ("no keyword found", "未识别到关键词"),
    "ri_confirm": ("Confirm or change the category and the avoidable flag", "确认或修改原因类别及是否可避免"),
    "ri_save": ("Save the interview", "保存访谈"),
    "ri_saved": ("Exit interview saved: {category}.", "离职访谈已保存：{category}。"),
    "ri_required": ("The main reason is required.", "主要原因为必填项。"),
    "ri_choose": ("Choose a category and whether the churn was avoidable.", "请选择原因类别以及是否可避免。"),
    "ri_suggested_only": ("suggested, not confirmed", "仅为建议，未确认"),
    "ri_none_yet": ("No exit interview recorded yet.", "尚未记录离职访谈。"),
    "rv_title": ("Churn review", "流失复盘"),
    "rv_no_diagnosis": ("No diagnosis stored yet: run `churnwatch diagnose` on this home.",
                        "尚未保存诊断结果：请在此数据目录运行 `churnwatch diagnose`。"),
    "rv_unreadable": ("A stored result cannot be read ({error}): run `churnwatch diagnose` / `churnwatch review` "
                      "again.",
                      "无法读取已保存的结果（{error}）：请重新运行 `churnwatch diagnose` / `churnwatch review`。"),
    "rv_stored": ("From the diagnosis stored {when} by `churnwatch diagnose`; window {start} to {end}.",
                  "来自 `churnwatch diagnose` 于 {when} 保存的诊断结果；时间窗口 {start} 至 {end}。"),
    "rv_overall": ("{churned} of {accounts} accounts active at the window start churned: {rate} {ci} (95% Wilson "
                   "interval).",
                   "窗口开始时的 {accounts} 个活跃客户中有 {churned} 个流失：{rate} {ci}（95% Wilson 区间）。"),
    "rv_segments": ("Churn by segment", "各分群流失率"),
    "rv_segments_differ": ("Segments whose churn differs from the rest (Benjamini-Hochberg q < 0.05)",
                           "流失率与其余客户显著不同的分群（Benjamini-Hochberg q < 0.05）"),
    "rv_no_segment_differs": ("No segment differs from the rest; the five lowest q-values",
                              "没有分群与其余客户显著不同；q 值最低的五个分群"),
    "rv_all_segments": ("All segments", "全部分群"),
    "rv_dimension": ("Dimension", "维度"),
    "rv_segment": ("Segment", "分群"),
    "rv_accounts": ("Accounts", "客户数"),
    "rv_churned": ("Churned", "流失数"),
    "rv_rate": ("Churn rate", "流失率"),
    "rv_interval": ("95% interval", "95% 区间"),
    "rv_rest_rate": ("Rest", "其余客户"),
    "rv_q": ("q-value", "q 值"),
    "rv_dim_industry": ("Industry", "行业"),
    "rv_dim_size_band": ("Company size (employees)", "公司规模（员工数）"),
    "rv_dim_region": ("Region", "地区"),
    "rv_dim_tenure_band": ("Tenure", "客户时长"),
    "rv_dim_channel": ("Channel", "渠道"),
    "rv_dim_csm": ("CSM", "客户成功经理"),
    "rv_dim_plan": ("Plan", "套餐"),
    "rv_dim_segment": ("Segment", "客户分层"),
    "rv_tenure_0_3m": ("0-3 months", "0-3 个月"),
    "rv_tenure_3_12m": ("3-12 months", "3-12 个月"),
    "rv_tenure_1_2y": ("1-2 years", "1-2 年"),
    "rv_tenure_2y": ("2+ years", "2 年以上"),
    "rv_reasons": ("Why they left", "流失原因"),
    "rv_interviews": ("Interviews", "访谈数"),
    "rv_share": ("Share", "占比"),
    "rv_avoidable_share": ("Avoidable: {share} {ci} of the interviews with a known flag.",
                           "可避免：在已知是否可避免的访谈中占 {share} {ci}。"),
    "rv_coverage": ("Interview coverage: {coverage} of the churns in the window.",
                    "访谈覆盖率：窗口内流失的 {coverage}。"),
    "rv_new_interviews": ("{n} exit interview(s) recorded or changed since this diagnosis: run `churnwatch diagnose` "
                          "to include them.",
                          "自本次诊断以来新增或修改了 {n} 份离职访谈：请运行 `churnwatch diagnose` 将其纳入。"),
    "rv_no_reasons": ("No exit reasons in the window.", "窗口内没有流失原因记录。"),
    "rv_survival": ("Survival by company size (Kaplan-Meier)", "按公司规模的留存曲线（Kaplan-Meier）"),
    "rv_days": ("days", "天"),
    "rv_group": ("Group", "分组"),
    "rv_relationships": ("Relationships", "客户关系数"),
    "rv_median": ("Median lifetime (days)", "中位生命周期（天）"),
    "rv_s90": ("90 days", "90 天"),
    "rv_s365": ("1 year", "1 年"),
    "rv_s730": ("2 years", "2 年"),
    "rv_playbooks": ("Playbooks: retention after an intervention vs comparable accounts",
                     "应对方案：干预后的留存率与可比客户对比"),
    "rv_treated": ("Treated (matched)", "干预客户（已匹配）"),
    "rv_treated_retention": ("Retention, treated", "干预组留存率"),
    "rv_comparable_retention": ("Retention, comparable", "可比组留存率"),
    "rv_effect": ("Difference", "差异"),
    "rv_no_loop": ("No playbook comparison stored (no interventions or no matured scores).",
                   "尚未保存应对方案对比（没有干预记录或没有已到期的评分）。"),
    "all_tiers": ("All tiers", "全部等级"),
    "pp_value": ("{v} pp", "{v} 个百分点"),
    "rv_findings": ("Findings", "发现事项"),
    "rv_finding_title": ("Finding", "发现事项"),
    "rv_detail": ("Detail", "详情"),
    "rv_metric": ("Metric", "指标"),
    "rv_change_date": ("Change date", "变更上线日期"),
    "rv_before": ("Before", "变更前"),
    "rv_after": ("After", "变更后"),
    "rv_verdict": ("Verdict", "结论"),
    "rv_move": ("Move", "调整状态"),
    "rv_measured": ("Before/after measured by `churnwatch review` at {when} UTC.",
                    "前后对比由 `churnwatch review` 于 {when} UTC 计算。"),
    "rv_not_measured": ("Not measured yet: run `churnwatch review`.", "尚未衡量：请运行 `churnwatch review`。"),
    "rv_no_metric": ("no measured fix", "无需衡量的改进"),
    "rv_no_findings": ("No findings yet.", "暂无发现事项。"),
    "rv_add_finding": ("Add a finding", "添加发现事项"),
    "rv_add": ("Add", "添加"),
    "rv_finding_added": ("Finding {id} added.", "已添加发现事项 {id}。"),
    "rv_finding_moved": ("Finding {id}: {status}.", "发现事项 {id}：{status}。"),
    "rv_status_open": ("open", "待处理"),
    "rv_status_in_progress": ("in progress", "进行中"),
    "rv_status_done": ("done", "已完成"),
    "rv_status_dropped": ("dropped", "已放弃"),
    "rv_verdict_improved": ("improved", "改善"),
    "rv_verdict_worsened": ("worsened", "变差"),
    "rv_verdict_no_change": ("no detectable change", "无可检测的变化"),
    "rv_verdict_not_measurable": ("not measurable yet", "尚无法衡量"),
    # waterfall + admin messages
    "waterfall": ("SHAP waterfall (log-odds, before calibration)", "SHAP 瀑布图（对数几率，校准前）"),
    "wf_help": ("How each signal moved this account's score from the average account's: red raises the risk, "
                "green lowers it. Bars of the reasons and strengths above are in bold.",
                "各信号如何将该客户的分数从平均客户的分数推高或拉低：红色提高风险，绿色降低风险。上方原因与优势对应的条形以粗体标出。"),
    "wf_caption": ("Raw score {final} log-odds = {model_probability} before calibration; the published churn "
                   "probability (calibrated) is {probability}.",
                   "原始分数 {final}（对数几率）= 校准前 {model_probability}；"
                   "发布的流失概率（校准后）为 {probability}。"),
    "wf_none": ("No SHAP waterfall for this score: it was made before the scoring run kept waterfalls. The next "
                "`churnwatch score` adds it.",
                "此评分没有 SHAP 瀑布图：它早于保存瀑布图的评分运行。下一次 `churnwatch score` 会生成。"),
    **WATERFALL_TEXTS,  # the SHAP waterfall's own words (insights.waterfall_chart)
    "admin_conflict": ("Version {version} was saved by someone else after you opened this page: nothing was saved. "
                       "Your values are kept below; save again to apply them over version {version}.",
                       "您打开此页面后，其他人保存了版本 {version}：本次未保存任何内容。您填写的值保留在下方，"
                       "再次保存即可在版本 {version} 之上生效。"),
}

# waterfall + admin messages: pydantic's validation errors (``type`` -> Chinese template; ``{...}`` are
# the error's limits, kept as given). English pages show pydantic's own message.
VALIDATION_ZH: dict[str, str] = {
    "missing": "必填",
    "extra_forbidden": "不是可用的设置项",
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "应大于或等于 {ge}",
    "less_than": "应小于 {lt}",
    "less_than_equal": "应小于或等于 {le}",
    "multiple_of": "应为 {multiple_of} 的倍数",
    "finite_number": "应为有限数值",
    "int_parsing": "应为整数，无法将文本解析为整数",
    "int_type": "应为整数",
    "int_from_float": "应为整数，不能带小数部分",
    "float_parsing": "应为数字，无法将文本解析为数字",
    "float_type": "应为数字",
    "bool_parsing": "应为布尔值（true 或 false）",
    "bool_type": "应为布尔值（true 或 false）",
    "string_type": "应为文本",
    "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "string_pattern_mismatch": "应符合格式 {pattern}",
    "too_short": "至少 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "list_type": "应为列表",
    "dict_type": "应为键值映射",
    "model_type": "应为键值映射",
    "model_attributes_type": "应为键值映射",
    "literal_error": "应为以下之一：{expected}",
    "enum": "应为以下之一：{expected}",
    "url_parsing": "应为有效的网址",
    "url_scheme": "网址协议应为 {expected_schemes}",
    "url_type": "应为网址",
    "date_parsing": "应为有效日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "应为有效日期（YYYY-MM-DD）",
    "datetime_parsing": "应为有效的日期时间",
    "time_parsing": "应为有效时间（HH:MM）",
    "none_required": "应为空",
    "value_error": "值无效",
    "assertion_error": "值无效",
}

#: The settings models' own checks (``core.settings``) and the admin page's parsing, as
#: ``(English pattern, Chinese template with the pattern's groups)``.
CHECKS_ZH: tuple[tuple[str, str], ...] = (
    (r"choose starttls or ssl, not both", "starttls 与 ssl 只能选其一"),
    (r"unknown tier\(s\) (.+) \(tiers: (.+)\)", "未知的风险等级 {0}（可用等级：{1}）"),
    (r"tag (.+) has no condition.*", "标签 {0} 没有条件（tiers、health_below、reasons、features_above 等）"),
    (r"working_days: .*", "working_days：星期编号 0（星期一）到 6（星期日），至少一个"),
    (r"two tags share a name: (.+)", "有两个标签同名：{0}"),
    (r"sequence (.+): tag (.+) is not one of the tags.*", "序列 {0}：标签 {1} 不在已定义的标签中"),
    (r"sequence (.+): tag (.+) is given to churned accounts.*",
     "序列 {0}：标签 {1} 用于已流失的客户，不能用于再激活序列"),
    (r"two sequences share a name", "有两个序列同名"),
    (r"not a value: (.*)", "不是有效的值（无法按 YAML 解析）"),
    (r"not valid YAML: (.*)", "不是有效的 YAML，无法解析"),
    (r"(.+) value has no field (.+)", "{0} 类型的值没有字段 {1}"),
    (r"expected a list index 0\.\.(\d+).*got (.+)", "应为列表下标 0..{0}，实际为 {1}"),
)


def _expected(value: object) -> str:
    return str(value).replace(" or ", " 或 ")


def validation_message(kind: str | None, ctx: dict | None, message: str, lang: str) -> str:
    """One settings validation error in ``lang``: English keeps ``message`` (pydantic's, or the
    settings model's own); Chinese maps pydantic's error ``kind`` (with its limits from ``ctx``)
    or one of the settings' own checks (``CHECKS_ZH``); an unknown one says "invalid value" and
    keeps the original text after it."""
    if lang_of(lang) != "zh-CN":
        return message
    import re

    text = message.removeprefix("Value error, ")
    for pattern, zh in CHECKS_ZH:
        found = re.fullmatch(pattern, text, re.DOTALL)
        if found:
            return zh.format(*found.groups())
    template = VALIDATION_ZH.get(kind or "")
    if template is None or kind in ("value_error", "assertion_error"):
        return f"值无效：{text}"
    values = {k: _expected(v) for k, v in (ctx or {}).items()}
    try:
        return template.format(**values)
    except (KeyError, IndexError):
        return template.split("{")[0].rstrip("：: ") or "值无效"



class MissingText(KeyError):
    """A label asked for that the table does not have."""


def lang_of(value: str | None) -> str:
    """``zh-CN`` for any Chinese tag, else English."""
    return "zh-CN" if value and value.lower().startswith("zh") else DEFAULT_LANG


def t(key: str, lang: str, **values: object) -> str:
    """The label ``key`` in ``lang``, with ``{name}`` fields filled from ``values``.

    Raises:
        MissingText: ``key`` is not in the table.
    """
    try:
        en, zh = TEXTS[key]
    except KeyError:
        raise MissingText(f"workspace label {key!r} is not in workspace.texts.TEXTS") from None
    text = zh if lang_of(lang) == "zh-CN" else en
    return text.format(**values) if values else text


