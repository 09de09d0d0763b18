"""A small message catalogue, English and Chinese, for statements, reports and the web UI.

``t(key, lang, **values)`` formats the message ``key`` in ``lang`` (``en`` or ``zh``;
anything else falls back to English, and a key missing in Chinese falls back to its
English text). Keys are plain snake_case names; values are ``str.format`` fields.
"""

from __future__ import annotations

from typing import Any

LANGS = ("en", "zh")

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "statement_title": "Commission statement",
        "rep": "Rep",
        "period": "Period",
        "generated": "Generated",
        "date": "Date",
        "kind": "Kind",
        "order": "Order",
        "customer": "Customer",
        "rule": "Rule",
        "base": "Base",
        "rate": "Rate",
        "share": "Share",
        "earned": "Earned",
        "cause": "Cause",
        "amount": "Amount",
        "cumulative": "Cumulative",
        "explanation": "Explanation",
        "currency": "Currency",
        "total": "Total",
        "totals": "Totals",
        "deltas": "Lines",
        "commission_lines": "Commission and adjustments",
        "accelerator_lines": "Accelerators (tiers and caps)",
        "no_lines": "No commission booked in this period.",
        "kind_commission": "commission",
        "kind_adjustment": "adjustment",
        "kind_accelerator": "accelerator",
        "cause_OrderPlaced": "order placed",
        "cause_PaymentReceived": "payment",
        "cause_RefundIssued": "refund",
        "cause_OrderCancelled": "cancellation",
        "cause_PlanPublished": "plan change",
        "cause_RepChanged": "rep change",
        "cause_CustomerChanged": "CRM change",
        "base_revenue": "revenue",
        "base_margin": "margin",
        "base_quantity": "quantity",
        "base_commission": "period commission",
        "per_unit": "{rate} per unit",
        "ex_line": "line {line} sku {sku}: {base_kind} {base} x rate {rate}{mods} x share {share}"
        " = {amount}",
        "ex_mods": " x modifiers {mult}",
        "ex_no_rule": "line {line} sku {sku}: no rule matched = 0",
        "ex_order": "C = {commission} x earned {earned} = {cumulative}",
        "ex_delta": "{cumulative} - {before} before = {amount} ({cause})",
        "ex_accelerator": "period {period}: {rule} ({rate}), commission {base} x {mult} = {total};"
        " accelerator now {cumulative}, {before} before = {amount}",
        "ex_reverses": "reverses {delta}",
        "print": "Print",
        "performance_title": "Performance",
        "previous": "Previous",
        "change": "Change",
        "revenue": "Revenue",
        "orders": "Orders",
        "commission": "Commission",
    },
    "zh": {
        "statement_title": "提成报表",
        "rep": "销售代表",
        "period": "期间",
        "generated": "生成时间",
        "date": "日期",
        "kind": "类型",
        "order": "订单",
        "customer": "客户",
        "rule": "规则",
        "base": "提成基数",
        "rate": "提成比例",
        "share": "份额",
        "earned": "已赚比例",
        "cause": "原因",
        "amount": "金额",
        "cumulative": "累计",
        "explanation": "说明",
        "currency": "币种",
        "total": "合计",
        "totals": "合计",
        "deltas": "明细数",
        "commission_lines": "提成与调整",
        "accelerator_lines": "加速器（阶梯与封顶）",
        "no_lines": "本期间没有提成记录。",
        "kind_commission": "提成",
        "kind_adjustment": "调整",
        "kind_accelerator": "加速器",
        "cause_OrderPlaced": "下单",
        "cause_PaymentReceived": "收款",
        "cause_RefundIssued": "退款",
        "cause_OrderCancelled": "取消订单",
        "cause_PlanPublished": "方案变更",
        "cause_RepChanged": "销售代表变更",
        "cause_CustomerChanged": "客户资料变更",
        "base_revenue": "收入",
        "base_margin": "毛利",
        "base_quantity": "数量",
        "base_commission": "期间提成",
        "per_unit": "每单位 {rate}",
        "ex_line": "第 {line} 行 {sku}：{base_kind} {base} × 提成比例 {rate}{mods} × 份额 {share}"
        " = {amount}",
        "ex_mods": " × 修正系数 {mult}",
        "ex_no_rule": "第 {line} 行 {sku}：没有匹配的规则 = 0",
        "ex_order": "C = {commission} × 已赚比例 {earned} = {cumulative}",
        "ex_delta": "{cumulative} − 此前 {before} = {amount}（{cause}）",
        "ex_accelerator": "期间 {period}：{rule}（{rate}），期间提成 {base} × {mult} = {total}；"
        "加速器累计 {cumulative}，此前 {before}，本次 {amount}",
        "ex_reverses": "冲回 {delta}",
        "print": "打印",
        "performance_title": "业绩统计",
        "previous": "上期",
        "change": "变化",
        "revenue": "收入",
        "orders": "订单数",
        "commission": "提成",
    },
}


def lang_of(value: str | None) -> str:
    """``value`` if it is a supported language, else ``en``."""
    return value if value in LANGS else "en"


def t(key: str, lang: str = "en", **values: Any) -> str:
    """The message ``key`` in ``lang``, formatted with ``values``; the key itself when no
    catalogue has it."""
    text = MESSAGES.get(lang_of(lang), {}).get(key) or MESSAGES["en"].get(key) or key
    return text.format(**values) if values else text
