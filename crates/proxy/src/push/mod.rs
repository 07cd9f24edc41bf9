pub(crate) mod rtsp;
