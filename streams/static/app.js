// comstream web UI: the live leaderboard, a rep's statement and a customer page, drawn
// from the worker's JSON API. Plain JavaScript, no dependencies, no network beyond the
// worker. Every UI string comes from the catalogue below (English and Chinese).
"use strict";

const I18N = {
  en: {
    brand: "comstream",
    leaderboard: "Live leaderboard",
    period: "Period",
    team: "Team",
    region: "Region",
    all: "All",
    rank: "#",
    rep: "Rep",
    name: "Name",
    commission: "Commission",
    revenue: "Revenue",
    attainment: "Attainment",
    change_today: "Since yesterday",
    live: "live",
    connecting: "connecting…",
    updated: "updated",
    no_rows: "No commission booked in this period yet.",
    statement: "Statement",
    statement_of: "Statement of",
    printable: "Printable statement",
    date: "Date",
    kind: "Kind",
    order: "Order",
    customer: "Customer",
    cause: "Cause",
    amount: "Amount",
    cumulative: "Cumulative",
    explanation: "Explanation",
    why: "why?",
    expand_all: "Show all explanations",
    collapse_all: "Hide all explanations",
    totals: "Totals",
    total: "Total",
    earnings_chart: "Earnings through the period",
    attainment_chart: "Attainment against quota",
    quota: "Quota",
    no_quota: "No quota in this rep's plan",
    no_lines: "No statement lines for this period.",
    more_lines: "Show more ({shown} of {total} lines shown)",
    kind_commission: "commission",
    kind_adjustment: "adjustment",
    kind_accelerator: "accelerator",
    customer_page: "Customer",
    crm: "CRM facts",
    loyalty: "Loyalty",
    orders_365d: "Orders in the last 365 days",
    tenure_days: "Tenure (days)",
    first_order_at: "First order",
    orders: "Purchase history",
    favourite_categories: "Favourite categories",
    favourite_products: "Favourite products",
    category: "Category",
    sku: "Product",
    quantity: "Quantity",
    open_payments: "Open payments",
    paid: "Paid",
    outstanding: "Outstanding",
    commission_generated: "Commission generated",
    none: "None",
    not_found: "Not found",
    error: "Could not load",
    back: "Leaderboard",
    order_id: "Order",
    placed_at: "Placed",
    currency: "Currency",
    refunded: "Refunded",
    status: "Status",
    tier: "Tier",
    industry: "Industry",
    owner_rep_id: "Owner",
    customer_since: "Customer since",
    customer_id: "Customer id",
    changed_at: "Changed",
    known: "In CRM",
    orders_total: "Orders in all",
    last_order_at: "Last order",
    ev_OrderPlaced: "order placed",
    ev_OrderCancelled: "order cancelled",
    ev_PaymentReceived: "payment received",
    ev_RefundIssued: "refund issued",
    ev_PeriodClosed: "period closed",
    ev_CustomerChanged: "CRM change",
    queues: "Approval queues",
    payouts: "Payout history",
    exceptions: "Exceptions: orders paid beyond their total",
    excess: "Excess",
    to_review: "To review",
    to_approve: "To approve",
    to_pay: "To pay",
    act_review: "Review",
    act_return: "Return",
    act_approve: "Approve",
    act_pay: "Record payment",
    act_close: "Close period",
    reason: "Reason",
    reference: "Payout reference",
    version: "Version",
    state: "State",
    history: "History",
    actor: "Who",
    action: "Action",
    outcome: "Outcome",
    lifecycle: "Approval and payment",
    prior_adjustments: "Prior-period adjustments",
    origin_period: "Caused in",
    prior_line: "prior period",
    reviewed_by: "Reviewed by",
    approved_by: "Approved by",
    paid_at: "Paid",
    approved_total: "Approved total",
    no_items: "Nothing waiting.",
    signed_in_as: "Signed in as",
    sign_out: "Sign out",
    login_needed: "Sign in: open the link printed by `comstream users add` (it carries ?token=).",
    state_open: "open",
    state_closed: "closed",
    state_reviewed: "reviewed",
    state_approved: "approved",
    state_paid: "paid",
    applied: "applied",
    refused: "refused",
    when: "When",
    returned_because: "Returned",
    close_title: "Close a period",
    act_close_period: "close period",
  },
  zh: {
    brand: "comstream 提成",
    leaderboard: "实时排行榜",
    period: "期间",
    team: "团队",
    region: "区域",
    all: "全部",
    rank: "名次",
    rep: "销售代表",
    name: "姓名",
    commission: "提成",
    revenue: "收入",
    attainment: "完成率",
    change_today: "较昨日",
    live: "实时",
    connecting: "连接中…",
    updated: "更新于",
    no_rows: "本期间尚无提成。",
    statement: "提成报表",
    statement_of: "提成报表：",
    printable: "可打印报表",
    date: "日期",
    kind: "类型",
    order: "订单",
    customer: "客户",
    cause: "原因",
    amount: "金额",
    cumulative: "累计",
    explanation: "说明",
    why: "为什么？",
    expand_all: "显示全部说明",
    collapse_all: "隐藏全部说明",
    totals: "合计",
    total: "总计",
    earnings_chart: "本期累计提成",
    attainment_chart: "指标完成情况",
    quota: "指标",
    no_quota: "该代表的方案没有指标",
    no_lines: "本期间没有报表行。",
    more_lines: "显示更多（已显示 {shown} / {total} 行）",
    kind_commission: "提成",
    kind_adjustment: "调整",
    kind_accelerator: "加速",
    customer_page: "客户视图",
    crm: "客户资料",
    loyalty: "忠诚度",
    orders_365d: "近365天订单数",
    tenure_days: "合作天数",
    first_order_at: "首次下单",
    orders: "购买记录",
    favourite_categories: "偏好品类",
    favourite_products: "偏好产品",
    category: "品类",
    sku: "产品",
    quantity: "数量",
    open_payments: "未结款项",
    paid: "已付",
    outstanding: "未付",
    commission_generated: "产生的提成",
    none: "无",
    not_found: "未找到",
    error: "无法加载",
    back: "排行榜",
    order_id: "订单号",
    placed_at: "下单时间",
    currency: "币种",
    refunded: "已退款",
    status: "状态",
    tier: "等级",
    industry: "行业",
    owner_rep_id: "负责代表",
    customer_since: "客户起始",
    customer_id: "客户编号",
    changed_at: "更新时间",
    known: "CRM 已登记",
    orders_total: "订单总数",
    last_order_at: "最近下单",
    ev_OrderPlaced: "下单",
    ev_OrderCancelled: "订单取消",
    ev_PaymentReceived: "收款",
    ev_RefundIssued: "退款",
    ev_PeriodClosed: "期间结账",
    ev_CustomerChanged: "客户资料变更",
    queues: "审批队列",
    payouts: "发放记录",
    exceptions: "异常：付款超过订单总额的订单",
    excess: "超额",
    to_review: "待审核",
    to_approve: "待审批",
    to_pay: "待发放",
    act_review: "审核",
    act_return: "退回",
    act_approve: "审批",
    act_pay: "登记发放",
    act_close: "结账",
    reason: "原因",
    reference: "发放凭证号",
    version: "版本",
    state: "状态",
    history: "历史",
    actor: "操作人",
    action: "操作",
    outcome: "结果",
    lifecycle: "审批与发放",
    prior_adjustments: "以前期间调整",
    origin_period: "发生期间",
    prior_line: "以前期间",
    reviewed_by: "审核人",
    approved_by: "审批人",
    paid_at: "发放时间",
    approved_total: "审批金额",
    no_items: "没有待办事项。",
    signed_in_as: "当前用户",
    sign_out: "退出",
    login_needed: "请登录：打开 `comstream users add` 打印的链接（带 ?token=）。",
    state_open: "未结账",
    state_closed: "已结账",
    state_reviewed: "已审核",
    state_approved: "已审批",
    state_paid: "已发放",
    applied: "已执行",
    refused: "已拒绝",
    when: "时间",
    returned_because: "已退回",
    close_title: "期间结账",
    act_close_period: "期间结账",
  },
};

function chooseLang() {
  const q = new URLSearchParams(location.search).get("lang");
  if (q === "en" || q === "zh") {
    localStorage.setItem("comstream.lang", q);
    return q;
  }
  const saved = localStorage.getItem("comstream.lang");
  return saved === "zh" ? "zh" : "en";
}

let LANG = chooseLang();

// The bearer token: given once in the sign-in link `comstream users add` prints (as
// #token=, which never reaches the server, or ?token=), kept in localStorage, removed
// from the address (and so from history) at once, and sent as Authorization: Bearer.
// Only the EventSource, which cannot send a header, carries it as ?token=.
(function takeToken() {
  const u = new URL(location.href);
  const frag = new URLSearchParams(u.hash.replace(/^#/, ""));
  const tok = u.searchParams.get("token") || frag.get("token");
  if (tok) {
    localStorage.setItem("comstream.token", tok);
    u.searchParams.delete("token");
    frag.delete("token");
    const hash = frag.toString();
    history.replaceState(null, "", u.pathname + u.search + (hash ? "#" + hash : ""));
  }
})();
const TOKEN = () => localStorage.getItem("comstream.token") || "";
function authHeaders(extra) {
  const hdr = Object.assign({ Accept: "application/json" }, extra || {});
  if (TOKEN()) hdr.Authorization = "Bearer " + TOKEN();
  return hdr;
}
function withToken(url) {
  if (!TOKEN()) return url;
  return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN());
}

// The printable statement opens in a new tab without the token in any address: with a
// token it is fetched with the Authorization header and shown from a blob: URL.
function printableLink(url) {
  return h("a", { class: "button", id: "printable", href: url, target: "_blank", rel: "noopener", onclick: async (ev) => {
    if (!TOKEN()) return; // authentication off: the plain link works
    ev.preventDefault();
    const win = window.open("about:blank", "_blank"); // in the click, for popup blockers
    const r = await fetch(url, { headers: authHeaders({ Accept: "text/html" }) });
    const page = await r.text();
    const blob = URL.createObjectURL(new Blob([page], { type: "text/html;charset=utf-8" }));
    if (win) win.location.href = blob;
    else location.href = blob;
  } }, t("printable"));
}

function t(key) {
  return (I18N[LANG] && I18N[LANG][key]) || I18N.en[key] || key;
}

// ---- small helpers -------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// Money arrives as decimal text; group digits without going through a float.
function money(text) {
  if (text === null || text === undefined || text === "") return "—";
  const str = String(text);
  const neg = str.startsWith("-");
  const [int, frac] = (neg ? str.slice(1) : str).split(".");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (neg ? "-" : "") + grouped + (frac !== undefined ? "." + frac : "");
}

function signed(text) {
  if (text === null || text === undefined) return "—";
  const str = String(text);
  return str.startsWith("-") ? money(str) : "+" + money(str);
}

function percent(fraction) {
  if (fraction === null || fraction === undefined || fraction === "") return "—";
  return (Number(fraction) * 100).toFixed(1) + "%";
}

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().slice(0, 16).replace("T", " ");
}

function withLang(url) {
  const u = new URL(url, location.origin);
  u.searchParams.set("lang", LANG);
  return u.pathname + u.search;
}

async function getJSON(url) {
  const r = await fetch(url, { headers: authHeaders() });
  let body = null;
  try {
    body = await r.json();
  } catch (_) {
    body = null;
  }
  if (!r.ok) {
    const err = new Error((body && body.error) || r.status + " " + r.statusText);
    err.status = r.status;
    throw err;
  }
  return body;
}

async function postJSON(url, body) {
  const r = await fetch(url, {
    method: "POST",
    headers: authHeaders({ "Content-Type": "application/json" }),
    body: JSON.stringify(body || {}),
  });
  let out = null;
  try {
    out = await r.json();
  } catch (_) {
    out = null;
  }
  return { status: r.status, ok: r.ok, body: out || {} };
}

function errorBox(err) {
  const what = err && err.status === 404 ? t("not_found") : t("error");
  return h("p", { class: "error" }, what + ": " + (err && err.message ? err.message : err));
}

function table(headers, rows, attrs) {
  return h(
    "table",
    attrs || {},
    h("thead", {}, h("tr", {}, headers.map((x) => (Array.isArray(x) ? h("th", { class: x[1] }, x[0]) : h("th", {}, x))))),
    h("tbody", {}, rows),
  );
}

function kv(pairs) {
  return h(
    "dl",
    { class: "kv" },
    pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v === null || v === undefined ? "—" : v)]),
  );
}

const main = () => document.getElementById("main");
const params = () => new URLSearchParams(location.search);

function setParam(name, value) {
  const u = new URL(location.href);
  if (value) u.searchParams.set(name, value);
  else u.searchParams.delete(name);
  history.replaceState(null, "", u.pathname + u.search);
}

// ---- leaderboard ---------------------------------------------------------------------

let stream = null;
let lastBoard = null;

function attainmentCell(row) {
  if (row.attainment === null || row.attainment === undefined) return h("td", { class: "num" }, "—");
  const pct = Math.max(0, Math.min(1.5, Number(row.attainment)));
  const bar = s(
    "svg",
    { width: 60, height: 8, class: "bar", "aria-hidden": "true" },
    s("rect", { x: 0, y: 0, width: 60, height: 8, rx: 2, class: "bar-bg" }),
    s("rect", { x: 0, y: 0, width: (60 * pct) / 1.5, height: 8, rx: 2, class: pct >= 1 ? "bar-hit" : "bar-fg" }),
    s("line", { x1: 40, y1: 0, x2: 40, y2: 8, class: "bar-quota" }),
  );
  return h("td", { class: "num attainment" }, percent(row.attainment), " ", bar);
}

function renderBoard(board, previous) {
  const before = new Map();
  for (const r of (previous && previous.rows) || []) before.set(r.rep_id + "|" + r.currency, r.commission);
  const period = board.period;
  const rows = board.rows.map((r) => {
    const key = r.rep_id + "|" + r.currency;
    const changed = before.size > 0 && before.get(key) !== r.commission;
    const up = !String(r.change_today).startsWith("-") && Number(r.change_today) !== 0;
    return h(
      "tr",
      { "data-rep": r.rep_id, class: changed ? "flash" : null },
      h("td", { class: "num rank" }, r.rank),
      h("td", {}, h("a", { href: withLang(`/reps/${encodeURIComponent(r.rep_id)}?period=${period}`) }, r.rep_id)),
      h("td", {}, r.name || "—"),
      h("td", {}, r.team_id || "—"),
      h("td", { class: "num commission" }, money(r.commission), h("span", { class: "cur" }, " " + r.currency)),
      h("td", { class: "num revenue" }, money(r.revenue_base)),
      attainmentCell(r),
      h("td", { class: "num change " + (up ? "up" : Number(r.change_today) < 0 ? "down" : "") }, signed(r.change_today)),
    );
  });
  const holder = document.getElementById("board");
  if (!holder) return;
  holder.replaceChildren(
    rows.length
      ? table(
          [[t("rank"), "num"], t("rep"), t("name"), t("team"), [t("commission"), "num"], [t("revenue"), "num"], [t("attainment"), "num"], [t("change_today"), "num"]],
          rows,
          { id: "leaderboard", class: "grid", "data-version": board.version === undefined ? "" : board.version },
        )
      : h("p", { class: "muted", id: "leaderboard-empty" }, t("no_rows")),
  );
  const status = document.getElementById("live-status");
  if (status) {
    status.className = "live on";
    status.textContent = `● ${t("live")} · ${t("updated")} ${new Date().toLocaleTimeString()}`;
  }
}

function connect() {
  if (stream) stream.close();
  const p = params();
  const q = new URLSearchParams();
  for (const k of ["period", "team", "region"]) if (p.get(k)) q.set(k, p.get(k));
  q.set("limit", "50");
  const status = document.getElementById("live-status");
  if (status) {
    status.className = "live";
    status.textContent = t("connecting");
  }
  stream = new EventSource(withToken("/api/leaderboard/stream?" + q.toString()));
  stream.addEventListener("leaderboard", (ev) => {
    const board = JSON.parse(ev.data);
    renderBoard(board, lastBoard);
    lastBoard = board;
  });
  stream.onerror = () => {
    const st = document.getElementById("live-status");
    if (st) {
      st.className = "live";
      st.textContent = t("connecting");
    }
  };
}

function select(id, label, options, value, onchange) {
  return h(
    "label",
    { class: "filter" },
    label + " ",
    h(
      "select",
      { id, onchange: (e) => onchange(e.target.value) },
      options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)),
    ),
  );
}

async function leaderboardPage() {
  document.title = t("leaderboard") + " · comstream";
  const root = main();
  root.replaceChildren(
    h("div", { class: "head" }, h("h1", {}, t("leaderboard")), h("span", { id: "live-status", class: "live" }, t("connecting"))),
    h("div", { id: "filters", class: "filters" }),
    h("div", { id: "board" }),
  );
  let filters = { teams: [], regions: [], periods: [], current_period: "" };
  try {
    filters = await getJSON("/api/filters");
  } catch (err) {
    root.append(errorBox(err));
  }
  const p = params();
  const period = p.get("period") || filters.current_period;
  const change = (name) => (value) => {
    setParam(name, value);
    lastBoard = null;
    connect();
  };
  document.getElementById("filters").replaceChildren(
    select("filter-period", t("period"), filters.periods.map((x) => [x, x]), period, change("period")),
    select("filter-team", t("team"), [["", t("all")], ...filters.teams.map((x) => [x, x])], p.get("team") || "", change("team")),
    select("filter-region", t("region"), [["", t("all")], ...filters.regions.map((x) => [x, x])], p.get("region") || "", change("region")),
  );
  connect();
}

// ---- rep page ------------------------------------------------------------------------

function lineCause(line) {
  const type = line.cause_event_type || line.cause || "";
  return I18N[LANG]["ev_" + type] || type;
}

// days: the statement's amounts per UTC day ({day, currency, amount}, by day), which the
// statement API sends whole whatever page of lines it sends
function earningsChart(days, period) {
  const W = 640, H = 220, L = 64, R = 16, T = 16, B = 32;
  const currency = days.length ? days[0].currency : "";
  const pts = [];
  let sum = 0;
  for (const d of days) {
    if (d.currency !== currency) continue;
    sum += Number(d.amount);
    pts.push([Date.parse(d.day + "T00:00:00Z"), sum]);
  }
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", id: "earnings-chart", role: "img" });
  svg.append(s("title", {}, t("earnings_chart")));
  if (!pts.length) return svg;
  let x0 = pts[0][0], x1 = pts[pts.length - 1][0];
  // the period's first day to its end (or now, if sooner); UTC, as months are cut in UTC
  // by default (a plan in another time zone shifts this by hours, not by days)
  const m = /^(\d{4})-(\d{2})$/.exec(period || "");
  const q = /^(\d{4})-Q([1-4])$/.exec(period || "");
  const bounds = m
    ? [Date.UTC(+m[1], +m[2] - 1, 1), Date.UTC(+m[1], +m[2], 1)]
    : q
      ? [Date.UTC(+q[1], (+q[2] - 1) * 3, 1), Date.UTC(+q[1], +q[2] * 3, 1)]
      : null;
  if (bounds) {
    x0 = Math.min(x0, bounds[0]);
    x1 = Math.max(x1, Math.min(bounds[1], Date.now()));
  }
  if (x1 <= x0) x1 = x0 + 1;
  const short = x1 - x0 < 2 * 86400000;
  const label = (x) => new Date(x).toISOString().slice(5, short ? 16 : 10).replace("T", " ");
  const ys = pts.map((p) => p[1]);
  let y0 = Math.min(0, ...ys), y1 = Math.max(0, ...ys);
  if (y1 === y0) y1 = y0 + 1;
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const Y = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4;
    svg.append(s("line", { x1: L, x2: W - R, y1: Y(v), y2: Y(v), class: "grid-line" }));
    svg.append(s("text", { x: L - 6, y: Y(v) + 4, class: "axis", "text-anchor": "end" }, money(v.toFixed(0))));
  }
  for (const x of [x0, (x0 + x1) / 2, x1]) {
    svg.append(s("text", { x: X(x), y: H - 10, class: "axis", "text-anchor": "middle" }, label(x)));
  }
  let d = `M ${X(x0)} ${Y(0)}`;
  for (const [x, y] of pts) d += ` H ${X(x).toFixed(1)} V ${Y(y).toFixed(1)}`;
  d += ` H ${X(x1).toFixed(1)}`;
  svg.append(s("path", { d, class: "earn-line" }));
  const last = pts[pts.length - 1];
  svg.append(s("circle", { cx: X(last[0]), cy: Y(last[1]), r: 3.5, class: "earn-dot" }));
  svg.append(s("text", { x: W - R, y: T + 12, class: "axis strong", "text-anchor": "end" }, `${money(sum.toFixed(2))} ${currency}`));
  return svg;
}

function attainmentChart(row) {
  if (!row || row.attainment === null || row.attainment === undefined) {
    return h("p", { class: "muted", id: "attainment-chart" }, t("no_quota"));
  }
  const W = 320, H = 64, L = 8, R = 8;
  const a = Number(row.attainment);
  const max = Math.max(1.5, a * 1.1);
  const X = (v) => L + (v / max) * (W - L - R);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", id: "attainment-chart", role: "img" });
  svg.append(s("title", {}, t("attainment_chart")));
  svg.append(s("text", { x: W - R, y: 11, class: "axis strong", "text-anchor": "end" }, percent(row.attainment)));
  svg.append(s("rect", { x: L, y: 18, width: W - L - R, height: 18, rx: 3, class: "bar-bg" }));
  svg.append(s("rect", { x: L, y: 18, width: Math.max(0, X(a) - L), height: 18, rx: 3, class: a >= 1 ? "bar-hit" : "bar-fg" }));
  svg.append(s("line", { x1: X(1), x2: X(1), y1: 13, y2: 41, class: "bar-quota" }));
  svg.append(s("text", { x: X(1), y: 55, class: "axis", "text-anchor": "middle" }, `${t("quota")} ${money(row.quota)}`));
  return svg;
}

function totalsBlock(totals) {
  if (!totals || typeof totals !== "object") return h("p", { class: "muted" }, "—");
  const cur = totals.currencies || totals.by_currency;
  if (cur && typeof cur === "object") {
    const rows = [];
    for (const [c, e] of Object.entries(cur)) {
      const kinds = e.by_kind || {};
      for (const [k, v] of Object.entries(kinds)) {
        rows.push(h("tr", { class: "kind-" + k }, h("td", {}, c), h("td", {}, t("kind_" + k)), h("td", { class: "num" }, money(v))));
      }
      rows.push(h("tr", { class: "total" }, h("td", {}, c), h("td", {}, h("strong", {}, t("total"))), h("td", { class: "num" }, h("strong", {}, money(e.total)))));
    }
    return table(["", t("kind"), t("amount")], rows, { class: "grid narrow", id: "totals" });
  }
  const pairs = [];
  const walk = (prefix, obj) => {
    for (const [k, v] of Object.entries(obj)) {
      if (v && typeof v === "object" && !Array.isArray(v)) walk(prefix + k + " · ", v);
      else pairs.push([prefix + k, typeof v === "string" && /^-?\d+\.\d+$/.test(v) ? money(v) : String(v)]);
    }
  };
  walk("", totals);
  return h("div", { id: "totals" }, kv(pairs));
}

function statementRows(lines, first = 0) {
  const out = [];
  lines.forEach((ln, i) => {
    const id = "why-" + (first + i);
    const order = ln.order_id
      ? ln.customer_id
        ? h("a", { href: withLang(`/customers/${encodeURIComponent(ln.customer_id)}`), class: "order-link" }, ln.order_id)
        : ln.order_id
      : "—";
    const kindText = t("kind_" + ln.kind);
    const row = h(
      "tr",
      { class: "line kind-" + ln.kind, "data-delta": ln.delta_id, "aria-controls": id },
      h("td", { class: "nowrap" }, when(ln.occurred_at)),
      h(
        "td",
        {},
        h("span", { class: "badge " + ln.kind }, kindText),
        ln.origin_period && ln.booked_period && ln.origin_period !== ln.booked_period
          ? h("span", { class: "badge prior", title: t("origin_period") + " " + ln.origin_period }, t("prior_line") + " " + ln.origin_period)
          : null,
      ),
      h("td", {}, order),
      h("td", {}, lineCause(ln)),
      h("td", { class: "num amount" }, money(ln.amount), h("span", { class: "cur" }, " " + (ln.currency || ""))),
      h("td", { class: "num" }, money(ln.cumulative)),
      h("td", {}, h("button", { type: "button", class: "why", "aria-expanded": "false" }, t("why"))),
    );
    const explain = h(
      "tr",
      { class: "explain", id, hidden: true },
      h("td", { colspan: 7 }, h("div", { class: "explanation" }, (ln.explanation || "—").replace(/; /g, ";\n"))),
    );
    const toggle = (e) => {
      if (e.target.closest("a")) return;
      explain.hidden = !explain.hidden;
      row.querySelector("button.why").setAttribute("aria-expanded", String(!explain.hidden));
      row.classList.toggle("open", !explain.hidden);
    };
    row.addEventListener("click", toggle);
    out.push(row, explain);
  });
  return out;
}

const STATEMENT_PAGE = 200; // lines per request (?lines=N on the page); "show more" fetches the next

function statementURL(repId, period, offset) {
  const asked = parseInt(params().get("lines") || "", 10);
  const size = asked >= 1 ? Math.min(asked, 5000) : STATEMENT_PAGE;
  return `/api/reps/${encodeURIComponent(repId)}/statement?period=${encodeURIComponent(period)}&lang=${LANG}&offset=${offset}&limit=${size}`;
}

// "Show more": appends the next page of lines to the statement table until all are shown
function moreLines(repId, period, stmt) {
  let shown = (stmt.lines || []).length;
  const total = stmt.line_count || shown;
  const button = h("button", { type: "button", id: "more-lines" });
  const label = () => {
    button.textContent = t("more_lines").replace("{shown}", String(shown)).replace("{total}", String(total));
    button.hidden = shown >= total;
  };
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const next = await getJSON(statementURL(repId, period, shown));
      const body = document.querySelector("#statement tbody");
      const rows = statementRows(next.lines || [], shown);
      if (body) body.append(...rows);
      shown += (next.lines || []).length;
      if (!(next.lines || []).length) shown = total;
    } catch (err) {
      button.after(errorBox(err));
    } finally {
      button.disabled = false;
      label();
    }
  });
  label();
  return h("p", { class: "more" }, button);
}

async function repPage(repId) {
  const p = params();
  const root = main();
  root.replaceChildren(h("p", { class: "muted" }, "…"));
  let filters = { current_period: "", periods: [] };
  try {
    filters = await getJSON("/api/filters");
  } catch (_) {
    /* the page still works with an explicit period */
  }
  const period = p.get("period") || filters.current_period;
  document.title = `${t("statement")} ${repId} ${period} · comstream`;
  let stmt, board;
  try {
    [stmt, board] = await Promise.all([
      getJSON(statementURL(repId, period, 0)),
      getJSON(`/api/leaderboard?period=${encodeURIComponent(period)}&limit=1000`).catch(() => ({ rows: [] })),
    ]);
  } catch (err) {
    root.replaceChildren(h("h1", {}, `${t("statement_of")} ${repId}`), errorBox(err));
    return;
  }
  const row = (board.rows || []).find((r) => r.rep_id === repId);
  const lines = stmt.lines || [];
  let open = false;
  const expandAll = h("button", { type: "button", id: "expand-all" }, t("expand_all"));
  expandAll.addEventListener("click", () => {
    open = !open;
    for (const tr of document.querySelectorAll("tr.explain")) tr.hidden = !open;
    for (const tr of document.querySelectorAll("tr.line")) tr.classList.toggle("open", open);
    expandAll.textContent = open ? t("collapse_all") : t("expand_all");
  });
  const periods = filters.periods.includes(period) ? filters.periods : [period, ...filters.periods];
  const periodSelect = h("select", { id: "period" }, periods.map((x) => h("option", { value: x, selected: x === period }, x)));
  periodSelect.addEventListener("change", () => {
    setParam("period", periodSelect.value);
    repPage(repId);
  });
  root.replaceChildren(
    h("p", { class: "crumbs" }, h("a", { href: withLang(`/?period=${period}`) }, "← " + t("back"))),
    h(
      "div",
      { class: "head" },
      h("h1", {}, `${t("statement_of")} ${row && row.name ? row.name + " (" + repId + ")" : repId}`),
      h("label", { class: "filter" }, t("period") + " ", periodSelect),
      printableLink(`/api/reps/${encodeURIComponent(repId)}/statement.html?period=${encodeURIComponent(period)}&lang=${LANG}`),
    ),
    row
      ? kv([
          [t("team"), row.team_id],
          [t("region"), row.region],
          [t("commission"), money(row.commission) + " " + row.currency],
          [t("revenue"), money(row.revenue_base)],
          [t("attainment"), percent(row.attainment)],
        ])
      : null,
    h(
      "div",
      { class: "charts" },
      h("section", {}, h("h2", {}, t("earnings_chart")), earningsChart(stmt.days || [], period)),
      h("section", {}, h("h2", {}, t("attainment_chart")), attainmentChart(row)),
    ),
    h("h2", {}, t("statement"), " ", expandAll),
    lines.length
      ? table(
          [t("date"), t("kind"), t("order"), t("cause"), [t("amount"), "num"], [t("cumulative"), "num"], t("explanation")],
          statementRows(lines),
          { id: "statement", class: "grid" },
        )
      : h("p", { class: "muted" }, t("no_lines")),
    lines.length ? moreLines(repId, period, stmt) : null,
    h("h2", {}, t("totals")),
    totalsBlock(stmt.totals),
    h("section", { id: "lifecycle" }),
  );
  lifecycleBlock(repId, period);
}

// ---- statement lifecycle: state, history, queues, payouts ----------------------------

function stateBadge(status) {
  return h("span", { class: "badge state-" + status }, t("state_" + status));
}

function amountsText(amounts) {
  const pairs = Object.entries(amounts || {});
  return pairs.length ? pairs.map(([c, a]) => money(a) + " " + c).join(", ") : "—";
}

function historyTable(history) {
  return table(
    [t("when"), t("actor"), t("action"), t("state"), t("outcome"), t("reason")],
    history.map((r) =>
      h(
        "tr",
        { class: "audit " + r.outcome },
        h("td", { class: "nowrap" }, when(r.at)),
        h("td", {}, r.actor_id + (r.actor_role ? " (" + r.actor_role + ")" : "")),
        h("td", {}, r.action),
        h("td", {}, r.state_before + " → " + r.state_after),
        h("td", {}, t(r.outcome) + (r.code ? " · " + r.code : "")),
        h("td", { class: "free-text" }, r.reason || r.reference || (r.code ? r.message : "")),
      ),
    ),
    { id: "history", class: "grid" },
  );
}

async function lifecycleBlock(repId, period) {
  const box = document.getElementById("lifecycle");
  if (!box) return;
  let st;
  try {
    st = await getJSON(`/api/statements/${encodeURIComponent(repId)}/${encodeURIComponent(period)}`);
  } catch (_) {
    return; // not allowed, or no sink: the statement above stands alone
  }
  const prior = st.prior_period_adjustments || [];
  box.replaceChildren(
    h("h2", {}, t("lifecycle"), " ", stateBadge(st.status)),
    kv([
      [t("version"), String(st.version)],
      [t("total"), amountsText(st.totals)],
      [t("reviewed_by"), st.reviewed_by],
      [t("approved_by"), st.approved_by],
      [t("approved_total"), Object.keys(st.approved_totals || {}).length ? amountsText(st.approved_totals) : null],
      [t("paid"), Object.keys(st.paid || {}).length ? amountsText(st.paid) : null],
      [t("reference"), st.reference || null],
      [t("returned_because"), st.return_reason || null],
    ]),
    prior.length
      ? [
          h("h2", {}, t("prior_adjustments")),
          table(
            [t("origin_period"), [t("amount"), "num"]],
            prior.map((p) => h("tr", {}, h("td", {}, p.origin_period), h("td", { class: "num" }, amountsText(p.amounts)))),
            { id: "prior", class: "grid" },
          ),
        ]
      : "",
    h("h2", {}, t("history")),
    (st.history || []).length ? historyTable(st.history) : h("p", { class: "muted" }, t("no_items")),
  );
}

function notice(box, res) {
  const ok = res.ok;
  const text = ok ? t("applied") + ": " + (res.body.record ? res.body.record.message : "") : t("refused") + " (" + res.status + "): " + (res.body.error || "");
  box.replaceChildren(h("p", { class: ok ? "ok" : "error", role: "status" }, text));
}

function actionCell(row, actions, refresh) {
  const reason = h("input", { type: "text", class: "reason", placeholder: t("reason"), "aria-label": t("reason") });
  const ref = h("input", { type: "text", class: "reference", placeholder: t("reference"), "aria-label": t("reference") });
  const box = h("div", { class: "notice" });
  const base = `/api/statements/${encodeURIComponent(row.rep_id)}/${encodeURIComponent(row.period)}/`;
  const btn = (action, body) =>
    h("button", { type: "button", class: "act-" + action, onclick: async () => {
      const res = await postJSON(base + action, Object.assign({ version: row.version }, body()));
      notice(box, res);
      if (res.ok) setTimeout(refresh, 600);
    } }, t("act_" + action));
  const parts = [];
  if (actions.includes("return")) parts.push(reason);
  if (actions.includes("pay")) parts.push(ref);
  for (const a of actions) {
    if (a === "return") parts.push(btn("return", () => ({ reason: reason.value })));
    else if (a === "pay") parts.push(btn("pay", () => ({ amounts: row.approved_totals || {}, reference: ref.value })));
    else parts.push(btn(a, () => ({})));
  }
  return h("td", { class: "actions" }, parts, box);
}

function queueTable(rows, actions, refresh, id) {
  if (!rows.length) return h("p", { class: "muted" }, t("no_items"));
  return table(
    [t("rep"), t("name"), t("period"), t("state"), [t("total"), "num"], t("reason"), ""],
    rows.map((r) =>
      h(
        "tr",
        { "data-rep": r.rep_id },
        h("td", {}, h("a", { href: withLang(`/reps/${encodeURIComponent(r.rep_id)}?period=${r.period}`) }, r.rep_id)),
        h("td", {}, r.name || ""),
        h("td", {}, r.period),
        h("td", {}, stateBadge(r.status)),
        h("td", { class: "num" }, amountsText(r.status === "approved" ? r.approved_totals : r.totals)),
        h("td", { class: "free-text" }, r.return_reason || ""),
        actionCell(r, actions, refresh),
      ),
    ),
    { id, class: "grid" },
  );
}

async function whoAmI() {
  try {
    return await getJSON("/api/me");
  } catch (_) {
    return { auth: true, user: null };
  }
}

async function queuesPage() {
  document.title = t("queues") + " · comstream";
  const root = main();
  root.replaceChildren(h("p", { class: "muted" }, "…"));
  const me = await whoAmI();
  const role = me.user ? me.user.role : null;
  let q;
  try {
    q = await getJSON("/api/queues" + (params().get("period") ? "?period=" + encodeURIComponent(params().get("period")) : ""));
  } catch (err) {
    root.replaceChildren(h("h1", {}, t("queues")), errorBox(err), me.user ? "" : h("p", {}, t("login_needed")));
    return;
  }
  const refresh = () => queuesPage();
  const closeBox = h("div", { class: "notice" });
  const closeInput = h("input", { type: "text", id: "close-period", placeholder: "2026-11", "aria-label": t("period") });
  root.replaceChildren(
    h("h1", {}, t("queues")),
    role === "admin"
      ? h(
          "section",
          { id: "close" },
          h("h2", {}, t("close_title")),
          closeInput,
          h("button", { type: "button", id: "close-button", onclick: async () => {
            const res = await postJSON(`/api/periods/${encodeURIComponent(closeInput.value.trim())}/close`, {});
            notice(closeBox, res);
          } }, t("act_close")),
          closeBox,
        )
      : "",
    h("h2", {}, t("to_review")),
    queueTable(q.review || [], role === "manager" ? ["review", "return"] : [], refresh, "queue-review"),
    h("h2", {}, t("to_approve")),
    queueTable(q.approve || [], role === "finance" ? ["approve", "return"] : [], refresh, "queue-approve"),
    h("h2", {}, t("to_pay")),
    queueTable(q.pay || [], role === "finance" ? ["pay"] : [], refresh, "queue-pay"),
  );
}

async function payoutsPage() {
  document.title = t("payouts") + " · comstream";
  const root = main();
  let body;
  try {
    body = await getJSON("/api/payouts" + (params().get("period") ? "?period=" + encodeURIComponent(params().get("period")) : ""));
  } catch (err) {
    root.replaceChildren(h("h1", {}, t("payouts")), errorBox(err));
    return;
  }
  const rows = body.payouts || [];
  root.replaceChildren(
    h("h1", {}, t("payouts")),
    rows.length
      ? table(
          [t("paid_at"), t("rep"), t("period"), [t("paid"), "num"], t("reference"), t("approved_by"), t("reviewed_by")],
          rows.map((r) =>
            h(
              "tr",
              {},
              h("td", { class: "nowrap" }, when(r.paid_at)),
              h("td", {}, h("a", { href: withLang(`/reps/${encodeURIComponent(r.rep_id)}?period=${r.period}`) }, r.rep_id)),
              h("td", {}, r.period),
              h("td", { class: "num" }, amountsText(r.paid)),
              h("td", { class: "free-text" }, r.reference),
              h("td", {}, r.approved_by || ""),
              h("td", {}, r.reviewed_by || ""),
            ),
          ),
          { id: "payouts", class: "grid" },
        )
      : h("p", { class: "muted" }, t("no_items")),
  );
  // money to look at: orders paid beyond their total (finance and admin only)
  let exceptions;
  try {
    exceptions = (await getJSON("/api/exceptions")).overpaid || [];
  } catch (_) {
    return; // not allowed, or no sink here: nothing to show
  }
  root.append(
    h("h2", {}, t("exceptions")),
    exceptions.length
      ? table(
          [t("order"), t("customer"), [t("total"), "num"], [t("paid"), "num"], [t("excess"), "num"]],
          exceptions.map((r) =>
            h(
              "tr",
              {},
              h("td", {}, r.order_id),
              h("td", {}, h("a", { href: withLang(`/customers/${encodeURIComponent(r.customer_id)}`) }, r.customer_id)),
              h("td", { class: "num" }, r.total + " " + r.currency),
              h("td", { class: "num" }, r.paid + " " + r.currency),
              h("td", { class: "num" }, r.excess + " " + r.currency),
            ),
          ),
          { id: "exceptions", class: "grid" },
        )
      : h("p", { class: "muted" }, t("no_items")),
  );
}

async function userBox() {
  const nav = document.getElementById("user");
  if (!nav) return;
  const me = await whoAmI();
  if (!me.user) {
    nav.replaceChildren();
    return;
  }
  nav.replaceChildren(
    h("a", { href: withLang("/queues"), id: "nav-queues" }, t("queues")),
    " ",
    h("a", { href: withLang("/payouts"), id: "nav-payouts" }, t("payouts")),
    " ",
    h("span", { class: "who" }, t("signed_in_as") + " " + me.user.name + " (" + me.user.role + ")"),
    " ",
    h("button", { type: "button", id: "sign-out", onclick: () => {
      localStorage.removeItem("comstream.token");
      location.reload();
    } }, t("sign_out")),
  );
}

// ---- customer page -------------------------------------------------------------------

function categoryChart(items) {
  const W = 420, rowH = 22, L = 110;
  const svg = s("svg", { viewBox: `0 0 ${W} ${Math.max(rowH, items.length * rowH)}`, class: "chart", id: "category-chart", role: "img" });
  const max = Math.max(1, ...items.map((x) => Number(x.revenue)));
  items.forEach((x, i) => {
    const w = ((W - L - 90) * Number(x.revenue)) / max;
    svg.append(s("text", { x: L - 6, y: i * rowH + 15, class: "axis", "text-anchor": "end" }, x.category));
    svg.append(s("rect", { x: L, y: i * rowH + 4, width: Math.max(1, w), height: 14, rx: 2, class: "bar-fg" }));
    svg.append(s("text", { x: L + w + 6, y: i * rowH + 15, class: "axis" }, money(x.revenue)));
  });
  return svg;
}

function genericTable(items, id) {
  if (!items || !items.length) return h("p", { class: "muted" }, t("none"));
  const keys = Object.keys(items[0]).filter((k) => items[0][k] === null || typeof items[0][k] !== "object");
  const rows = items.map((it) =>
    h(
      "tr",
      {},
      keys.map((k) => {
        const v = it[k];
        if (k === "customer_id" || k === "rep_id" || v === null || v === undefined) return h("td", {}, v === null || v === undefined ? "—" : String(v));
        if (typeof v === "string" && /^-?\d+\.\d{2}$/.test(v)) return h("td", { class: "num" }, money(v));
        if (typeof v === "string" && /^\d{4}-\d{2}-\d{2}T/.test(v)) return h("td", {}, when(v));
        return h("td", {}, String(v));
      }),
    ),
  );
  return table(keys.map((k) => I18N[LANG][k] || k.replace(/_/g, " ")), rows, { id, class: "grid" });
}

async function customerPage(customerId) {
  const root = main();
  document.title = `${t("customer_page")} ${customerId} · comstream`;
  root.replaceChildren(h("p", { class: "muted" }, "…"));
  let c;
  try {
    c = await getJSON(`/api/customers/${encodeURIComponent(customerId)}`);
  } catch (err) {
    root.replaceChildren(h("h1", {}, `${t("customer_page")} ${customerId}`), errorBox(err));
    return;
  }
  const facts = c.customer || {};
  const loyalty = c.loyalty || {};
  root.replaceChildren(
    h("p", { class: "crumbs" }, h("a", { href: withLang("/") }, "← " + t("back"))),
    h("h1", { id: "customer-name" }, `${t("customer_page")}: ${facts.name || customerId}`),
    h(
      "div",
      { class: "cols" },
      h("section", {}, h("h2", {}, t("crm")), kv(Object.entries(facts).map(([k, v]) => [I18N[LANG][k] || k.replace(/_/g, " "), v === null ? null : String(v)]))),
      h(
        "section",
        {},
        h("h2", {}, t("loyalty")),
        kv([
          [t("orders_365d"), loyalty.orders_365d],
          [t("tenure_days"), loyalty.tenure_days],
          [t("orders_total"), loyalty.orders_total],
          [t("first_order_at"), when(loyalty.first_order_at)],
          [t("last_order_at"), when(loyalty.last_order_at)],
        ]),
        h("h2", {}, t("commission_generated")),
        (c.commission || []).length
          ? table(
              [t("rep"), t("amount")],
              c.commission.map((x) =>
                h("tr", {}, h("td", {}, h("a", { href: withLang(`/reps/${encodeURIComponent(x.rep_id)}`) }, x.rep_id)), h("td", { class: "num" }, money(x.amount) + " " + x.currency)),
              ),
              { class: "grid narrow", id: "customer-commission" },
            )
          : h("p", { class: "muted" }, t("none")),
      ),
    ),
    h(
      "div",
      { class: "cols" },
      h("section", {}, h("h2", {}, t("favourite_categories")), (c.favourite_categories || []).length ? categoryChart(c.favourite_categories) : h("p", { class: "muted" }, t("none"))),
      h(
        "section",
        {},
        h("h2", {}, t("favourite_products")),
        table(
          [t("sku"), t("revenue"), t("quantity")],
          (c.favourite_products || []).map((x) => h("tr", {}, h("td", {}, x.sku), h("td", { class: "num" }, money(x.revenue)), h("td", { class: "num" }, x.quantity))),
          { class: "grid narrow" },
        ),
      ),
    ),
    h("h2", {}, t("open_payments")),
    (c.open_payments || []).length
      ? table(
          [t("order"), t("total"), t("paid"), t("outstanding")],
          c.open_payments.map((x) => h("tr", {}, h("td", {}, x.order_id), h("td", { class: "num" }, money(x.total)), h("td", { class: "num" }, money(x.paid)), h("td", { class: "num outstanding" }, money(x.outstanding)))),
          { class: "grid", id: "open-payments" },
        )
      : h("p", { class: "muted" }, t("none")),
    h("h2", {}, t("orders")),
    genericTable(c.orders || [], "orders"),
  );
}

// ---- routing -------------------------------------------------------------------------

function applyStatic() {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const b of document.querySelectorAll(".lang button")) b.classList.toggle("active", b.dataset.lang === LANG);
}

function route() {
  applyStatic();
  userBox();
  const path = location.pathname;
  let m;
  if ((m = /^\/reps\/([^/]+)\/?$/.exec(path))) return repPage(decodeURIComponent(m[1]));
  if ((m = /^\/customers\/([^/]+)\/?$/.exec(path))) return customerPage(decodeURIComponent(m[1]));
  if (/^\/queues\/?$/.test(path)) return queuesPage();
  if (/^\/payouts\/?$/.test(path)) return payoutsPage();
  return leaderboardPage();
}

for (const b of document.querySelectorAll(".lang button")) {
  b.addEventListener("click", () => {
    LANG = b.dataset.lang;
    localStorage.setItem("comstream.lang", LANG);
    setParam("lang", LANG);
    if (stream) stream.close();
    lastBoard = null;
    route();
  });
}

route();
