//! What the view's tests share.

pub(crate) mod browser;
pub(crate) mod http;
