//! The post-processing hook (`-u`, `-uT`): the child execs the program
//! itself, no shell, with the six original parameters and the UCSPI and
//! IPPROT_ environment; default signal dispositions, an empty mask and no
//! descriptors above 2 before the exec.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;

use crate::config::Hook;
use crate::config::addr::ip_text;
use crate::log::conninfo::ConnInfo;

/// The six parameters, in order.
fn params(hook: &Hook, info: &ConnInfo, file: &str) -> Vec<String> {
    let time = |t: &crate::log::timefmt::LocalTime| {
        if hook.text_times {
            t.iso()
        } else {
            t.epoch_secs().to_string()
        }
    };
    vec![
        file.to_string(),
        time(&info.start),
        time(&info.end),
        info.bytes_in.to_string(),
        info.bytes_out.to_string(),
        ip_text(info.client.ip()),
    ]
}

/// `v` with every control character (0x00–0x1f, 0x7f) replaced by `?`.
fn sanitize(v: &str) -> String {
    v.chars()
        .map(|c| if c.is_ascii_control() { '?' } else { c })
        .collect()
}

/// The variables added to the daemon's environment.
fn env_vars(info: &ConnInfo) -> Vec<(&'static str, String)> {
    let id = &info.identity;
    // values from the network: no control characters in the environment
    let s = |v: &Option<String>| v.as_deref().map_or_else(|| "-".into(), sanitize);
    vec![
        ("TCPREMOTEIP", ip_text(info.client.ip())),
        ("TCPREMOTEPORT", info.client.port().to_string()),
        ("TCPLOCALIP", ip_text(info.local.ip())),
        ("TCPLOCALPORT", info.local.port().to_string()),
        ("IPPROT_CONN", info.conn.to_string()),
        ("IPPROT_STATUS", info.status.as_str().to_string()),
        ("IPPROT_PROTO", id.proto.unwrap_or("-").to_string()),
        ("IPPROT_USER", s(&id.user)),
        ("IPPROT_HOST", s(&id.host)),
        ("IPPROT_DISPLAY", s(&id.display)),
        ("IPPROT_PID", s(&id.pid)),
        ("IPPROT_PROGRAM", s(&id.program)),
        ("IPPROT_SERVICE", s(&id.service)),
        ("IPPROT_VENDOR_HOST", s(&id.vendor_host)),
        (
            "IPPROT_VENDOR_PORT",
            id.vendor_port
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        ("IPPROT_SHA256", s(&info.sha256)),
    ]
}

fn cstr(b: Vec<u8>) -> CString {
    // NUL bytes cannot be passed to exec; they cannot come from argv or
    // the environment either, only from network values
    CString::new(b.into_iter().filter(|c| *c != 0).collect::<Vec<u8>>()).unwrap_or_default()
}

/// Exec the hook; returns only the exit status to use if exec failed.
pub fn exec(hook: &Hook, info: &ConnInfo, file: &str) -> i32 {
    let mut argv: Vec<CString> = hook
        .argv
        .iter()
        .map(|a| cstr(a.clone().into_bytes()))
        .collect();
    argv.extend(
        params(hook, info, file)
            .into_iter()
            .map(|a| cstr(a.into_bytes())),
    );
    let extra = env_vars(info);
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| !extra.iter().any(|(n, _)| k.as_os_str() == *n))
        .map(|(k, v)| {
            let mut kv: OsString = k;
            kv.push("=");
            kv.push(v);
            cstr(kv.into_vec())
        })
        .collect();
    env.extend(
        extra
            .into_iter()
            .map(|(k, v)| cstr(format!("{k}={v}").into_bytes())),
    );

    crate::os::signals::reset_before_exec();
    crate::os::process::close_from_3();
    let err = nix::unistd::execve(&argv[0], &argv, &env).err();
    let opt = if hook.text_times { "-uT" } else { "-u" };
    if let Some(e) = err {
        crate::log::error(&format!(
            "{opt}: cannot execute {}: {}",
            hook.argv[0],
            std::io::Error::from(e)
        ));
    }
    1
}
