//! End-to-end tests of the proxy: the real OpenSSH client tools on one side, a real sshd
//! on the other, the proxy in-process between, and the recordings read back from the store.

mod failures;
mod forwarding;
mod harness;
mod live;
mod refusals;
mod requests;
mod sessions;
mod stress;
