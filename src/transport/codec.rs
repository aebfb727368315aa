//! The protobuf codec of the `idgate.v1` services: prost's, except that a message that does not
//! decode (bad UTF-8 in a string field, a wrong wire type, a truncated field) is answered
//! `INVALID_ARGUMENT` with reason `MESSAGE_MALFORMED`, as docs/api.md §4 wants of malformed input, and
//! not tonic's `INTERNAL`. Wired in by `build.rs` (`codec_path`).
//!
//! Must never put any of the message's bytes, or prost's description of them, in the status.

use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::prost::Message;
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

use super::errors;

/// [`ProstCodec`] with malformed messages refused as the client's fault.
pub struct WireCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for WireCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for WireCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = WireDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        WireDecoder(self.0.decoder())
    }
}

/// [`ProstDecoder`] whose decode error is `INVALID_ARGUMENT` / `MESSAGE_MALFORMED`.
pub struct WireDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for WireDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|_| {
            errors::invalid(
                super::reasons::ErrorReason::MessageMalformed,
                "the message is not a valid protobuf encoding of its type",
            )
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
