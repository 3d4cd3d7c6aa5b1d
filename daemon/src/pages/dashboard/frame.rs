//! The dashboard's frame: the Calmony Pay bar, the project and test/live switch, the
//! navigation, and the look (the portal's palette, readable contrast, visible focus).

use hyper::Response;

use super::super::html::{escape, html_response};
use crate::response::Body;

/// Where the page is, for the navigation and the switch.
pub struct Place<'a> {
    pub project: &'a str,
    pub project_name: &'a str,
    pub mode: &'a str,
    /// Which navigation entry is current: `home`, `payments`, `audit`, `account`.
    pub section: &'a str,
    pub email: &'a str,
    pub csrf: &'a str,
    /// The other projects the user may open: `(id, name)`.
    pub projects: &'a [(String, String)],
}

pub const STYLE: &str = "*{box-sizing:border-box}\
 body{margin:0;font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f5f6f8;color:#1a1f36}\
 a{color:#2b3bbf}a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,[tabindex]:focus-visible{outline:3px solid #1a5fb4;outline-offset:2px}\
 .top{background:#1a1f36;color:#fff;display:flex;align-items:center;gap:1rem;padding:.6rem 1.25rem;flex-wrap:wrap}\
 .logo{font-weight:700;letter-spacing:.01em;color:#fff;text-decoration:none;font-size:1.05rem}.logo span{color:#9aa6ff}\
 .top .proj{color:#d7dbe8;font-size:.95rem}.top form{margin:0}\
 .top .spacer{flex:1}.top .who{color:#d7dbe8;font-size:.9rem}\
 .top button.link{background:none;border:1px solid #4a5170;color:#fff;padding:.3rem .7rem;font-size:.85rem}\
 .modes{display:inline-flex;border:1px solid #4a5170;border-radius:999px;overflow:hidden}\
 .modes a{color:#d7dbe8;text-decoration:none;padding:.2rem .75rem;font-size:.85rem}\
 .modes a[aria-current]{background:#fff;color:#1a1f36;font-weight:600}\
 .testband{background:#fff4d6;color:#7a4d00;text-align:center;font-size:.85rem;padding:.3rem;border-bottom:1px solid #f0c869}\
 .shell{display:flex;max-width:76rem;margin:0 auto;gap:1.5rem;padding:1.25rem}\
 nav.side{flex:0 0 12rem}nav.side ul{list-style:none;margin:0;padding:0}\
 nav.side a{display:block;padding:.45rem .75rem;border-radius:8px;color:#3c4257;text-decoration:none;font-weight:500}\
 nav.side a[aria-current]{background:#e6e9ff;color:#1f2a99;font-weight:650}\
 main{flex:1;min-width:0}\
 h1{font-size:1.45rem;margin:.1rem 0 1rem}h2{font-size:1.05rem;margin:0 0 .75rem}\
 .card{background:#fff;border:1px solid #e3e6ec;border-radius:12px;padding:1.1rem 1.25rem;margin:0 0 1.25rem;overflow-x:auto} .cut{max-width:9rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}\
 .tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(10.5rem,1fr));gap:1rem;margin:0 0 1.25rem}\
 .tile{background:#fff;border:1px solid #e3e6ec;border-radius:12px;padding:.9rem 1.1rem}\
 .tile .k{color:#5b6475;font-size:.85rem;margin:0}.tile .v{font-size:1.45rem;font-weight:700;margin:.15rem 0 0}\
 .tile .v.small{font-size:1.15rem}\
 table{width:100%;border-collapse:collapse;font-size:.93rem}\
 th{text-align:left;font-weight:600;color:#5b6475;font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;padding:.4rem .5rem;border-bottom:1px solid #e3e6ec}\
 td{padding:.6rem .5rem;border-bottom:1px solid #eef0f4;vertical-align:top}\
 tr:last-child td{border-bottom:0}.num{text-align:right;white-space:nowrap}\
 .muted{color:#5b6475}.nowrap{white-space:nowrap}.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}\
 .pill{font-size:.75rem;font-weight:600;border-radius:999px;padding:.1rem .55rem;white-space:nowrap;border:1px solid}\
 .pill.ok{background:#e7f6ec;color:#1d6b3a;border-color:#b5e0c3}.pill.warn{background:#fff4d6;color:#7a4d00;border-color:#f0c869}\
 .pill.bad{background:#fdecec;color:#8a1c1c;border-color:#f3b9b9}.pill.info{background:#eef2ff;color:#2b3bbf;border-color:#c7cffb}\
 button,.button{font:inherit;padding:.55rem 1.1rem;border:0;border-radius:8px;background:#3a4bd9;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}\
 .secondary{background:#fff;color:#1a1f36;border:1px solid #c9ced8}.danger{background:#b42318;color:#fff}\
 label{display:block;font-size:.9rem;color:#3c4257;margin:.7rem 0 .25rem;font-weight:500}\
 input[type=text],input[type=email],input[type=password],input[type=date],select{width:100%;font:inherit;padding:.5rem .65rem;border:1px solid #c9ced8;border-radius:8px;background:#fff;color:#1a1f36}\
 input[aria-invalid=true]{border-color:#b42318}.field-error{color:#b42318;font-size:.88rem;margin:.25rem 0 0}\
 .filters{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.25rem 1rem;align-items:end}\
 .filters label{margin-top:0}.actions{display:flex;gap:.6rem;flex-wrap:wrap;align-items:center;margin-top:1rem}.actions form{margin:0}\
 .note{background:#eef6ff;color:#16406b;border:1px solid #bcd7f5;border-radius:8px;padding:.75rem;margin:0 0 1rem}\
 .alert{background:#fdecec;color:#8a1c1c;border:1px solid #f3b9b9;border-radius:8px;padding:.75rem;margin:0 0 1rem}\
 dl.facts{display:grid;grid-template-columns:minmax(8rem,auto) 1fr;gap:.4rem 1rem;margin:0}dt{color:#5b6475}dd{margin:0;overflow-wrap:anywhere}\
 ol.timeline{list-style:none;margin:0;padding:0}ol.timeline li{padding:.4rem 0 .4rem 1.1rem;border-left:2px solid #e3e6ec;position:relative}\
 ol.timeline li::before{content:'';position:absolute;left:-6px;top:.8rem;width:10px;height:10px;border-radius:50%;background:#3a4bd9}\
 .chart .scroll{overflow-x:auto}.chart svg{width:100%;min-width:34rem;height:auto;display:block}.chart .tip{opacity:0}.chart g[tabindex]:hover .tip,.chart g[tabindex]:focus .tip{opacity:1}\
 .chart g[tabindex]:focus{outline:none}.chart g[tabindex]:focus>rect{stroke:#1a5fb4;stroke-width:2}\
 .pager{display:flex;justify-content:space-between;margin-top:.75rem}\
 .skip{position:absolute;left:.5rem;top:-3rem;background:#fff;color:#1a1f36;padding:.5rem .9rem;border-radius:8px;z-index:10}.skip:focus{top:.5rem}\
 .sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}\
 .auth{max-width:25rem;margin:8vh auto;padding:0 1rem}.auth .card{padding:1.75rem}.auth .logo{color:#1a1f36;display:block;text-align:center;margin:0 0 1.25rem;font-size:1.3rem}.auth .logo span{color:#3a4bd9}\
 .auth button{width:100%;margin-top:1.1rem}\
 @media(max-width:52rem){.shell{flex-direction:column;padding:.75rem;gap:.75rem}nav.side{flex:none}nav.side ul{display:flex;flex-wrap:wrap;gap:.1rem .2rem}\
 nav.side a{white-space:nowrap;padding:.35rem .55rem;font-size:.92rem}nav.side li.muted{padding:0 .2rem 0 .7rem!important;align-self:center}.hide-sm{display:none}.top{gap:.5rem .75rem}.tile .v{font-size:1.2rem}}";

/// A page for a signed-out visitor (sign-in): the logo and one card.
pub fn auth_page(status: u16, title: &str, body: &str) -> Response<Body> {
    html_response(
        status,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{} · Calmony Pay</title><style>{STYLE}</style></head><body>\
             <div class=\"auth\"><span class=\"logo\">Calmony <span>Pay</span></span>\
             <main class=\"card\">{body}</main></div></body></html>",
            escape(title)
        ),
    )
}

/// A signed-in page: the bar, the switch, the navigation and `body`.
pub fn page(status: u16, title: &str, at: &Place<'_>, body: &str) -> Response<Body> {
    let base = format!("/dashboard/{}", escape(at.project));
    let cur = |s: &str| {
        if at.section == s {
            " aria-current=\"page\""
        } else {
            ""
        }
    };
    let mode_link = |m: &str, label: &str| {
        format!(
            "<a href=\"{base}/{m}\"{}>{label}</a>",
            if at.mode == m {
                " aria-current=\"true\""
            } else {
                ""
            }
        )
    };
    let others: String = at
        .projects
        .iter()
        .filter(|(id, _)| id != at.project)
        .map(|(id, name)| {
            format!(
                "<li><a href=\"/dashboard/{}/test\">{}</a></li>",
                escape(id),
                escape(name)
            )
        })
        .collect();
    let others = if others.is_empty() {
        String::new()
    } else {
        format!(
            "<li class=\"muted\" style=\"padding:.75rem .75rem .25rem;font-size:.8rem\">Other projects</li>{others}"
        )
    };
    let band = if at.mode == "test" {
        "<div class=\"testband\" role=\"note\">Test mode: these are test payments; no real money moves.</div>"
    } else {
        ""
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · {pname} · Calmony Pay</title><style>{STYLE}</style></head><body>\
         <a class=\"skip\" href=\"#main\">Skip to content</a><header class=\"top\"><a class=\"logo\" href=\"{base}/{mode}\">Calmony <span>Pay</span></a>\
         <span class=\"proj\" id=\"project-name\">{pname}</span>\
         <nav class=\"modes\" aria-label=\"Test or live data\">{test}{live}</nav>\
         <span class=\"spacer\"></span><span class=\"who hide-sm\">{email}</span>\
         <form method=\"post\" action=\"/dashboard/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" class=\"link\" id=\"sign-out\">Sign out</button></form></header>{band}\
         <div class=\"shell\"><nav class=\"side\" aria-label=\"Dashboard\"><ul>\
         <li><a href=\"{base}/{mode}\"{h}>Home</a></li>\
         <li><a href=\"{base}/{mode}/payments\"{p}>Payments</a></li>\
         <li><a href=\"{base}/{mode}/customers\"{c}>Customers</a></li>\
         <li><a href=\"{base}/{mode}/subscriptions\"{sb}>Subscriptions</a></li>\
         <li><a href=\"{base}/{mode}/invoices\"{iv}>Invoices</a></li>\
         <li><a href=\"{base}/{mode}/checkout\"{co}>Checkout sessions</a></li>\
         <li><a href=\"{base}/{mode}/balance\"{bl}>Balance and payouts</a></li>\
         <li><a href=\"{base}/{mode}/keys\"{k}>API keys</a></li>\
         <li><a href=\"{base}/{mode}/webhooks\"{w}>Webhooks</a></li>\
         <li><a href=\"{base}/settings\"{st}>Business details</a></li>\
         <li><a href=\"{base}/users\"{u}>Users</a></li>\
         <li><a href=\"{base}/audit\"{a}>Audit log</a></li>\
         <li><a href=\"/dashboard/account?project={pid}\"{acc}>Your account</a></li>{others}\
         <li><a href=\"/dashboard/projects/new\" id=\"nav-new-project\">+ New project</a></li></ul></nav>\
         <main id=\"main\">{body}</main></div></body></html>",
        title = escape(title),
        pname = escape(at.project_name),
        mode = escape(at.mode),
        pid = escape(at.project),
        test = mode_link("test", "Test"),
        live = mode_link("live", "Live"),
        email = escape(at.email),
        csrf = escape(at.csrf),
        h = cur("home"),
        p = cur("payments"),
        a = cur("audit"),
        u = cur("users"),
        c = cur("customers"),
        sb = cur("subscriptions"),
        iv = cur("invoices"),
        co = cur("checkout"),
        bl = cur("balance"),
        k = cur("keys"),
        w = cur("webhooks"),
        st = cur("settings"),
        acc = cur("account"),
    );
    html_response(status, html)
}
