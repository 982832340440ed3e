//! Topic strings (PROTOCOL.md §4) and what the mock does with each.

/// What a topic is, once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    AggTrade,
    Depth(usize),
    BookTicker,
    MarkPrice,
    ForceOrder,
    /// `ADDRESS@user.orders`: order updates after this connection's order requests.
    UserOrders,
    /// `ADDRESS@user.degenPositions`: a completed position after each `SUBMIT`.
    DegenPositions,
    /// `!marketStatus@arr`: a snapshot of every symbol on subscribe.
    MarketStatus,
    /// Accepted (klines and the `!…@arr` streams) but never streamed: their payload shapes are unknown.
    Silent,
}

impl Stream {
    /// Whether the topic produces market data on the connection's schedule.
    pub fn is_market_data(self) -> bool {
        !matches!(
            self,
            Stream::UserOrders | Stream::DegenPositions | Stream::MarketStatus | Stream::Silent
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicError {
    /// No `@`, empty parts or an unknown stream name: -1004.
    Format,
    /// A market stream on a symbol that is not configured: -1122.
    UnknownSymbol(String),
}

const KLINE_INTERVALS: [&str; 7] = ["1m", "5m", "15m", "30m", "1h", "4h", "1d"];
const ALL_MARKET: [&str; 4] = ["!ticker", "!markPrice", "!bookTicker", "!forceOrder"];

/// Validates `topic` against the configured `symbols`; returns the stream and the symbol.
pub fn parse<'t>(topic: &'t str, symbols: &[String]) -> Result<(Stream, &'t str), TopicError> {
    let (symbol, name) = topic.split_once('@').ok_or(TopicError::Format)?;
    if symbol.is_empty() || name.is_empty() {
        return Err(TopicError::Format);
    }
    if name == "arr" {
        return if symbol == "!marketStatus" {
            Ok((Stream::MarketStatus, symbol))
        } else if ALL_MARKET.contains(&symbol) {
            Ok((Stream::Silent, symbol))
        } else {
            Err(TopicError::Format)
        };
    }
    if name == "user.orders" {
        return Ok((Stream::UserOrders, symbol));
    }
    if name == "user.degenPositions" {
        return Ok((Stream::DegenPositions, symbol));
    }
    let stream = match name {
        "aggTrade" => Stream::AggTrade,
        "depth5" => Stream::Depth(5),
        "depth10" => Stream::Depth(10),
        "depth20" => Stream::Depth(20),
        "bookTicker" => Stream::BookTicker,
        "markPrice" => Stream::MarkPrice,
        "forceOrder" => Stream::ForceOrder,
        _ => match name.strip_prefix("kline_") {
            Some(i) if KLINE_INTERVALS.contains(&i) => Stream::Silent,
            _ => return Err(TopicError::Format),
        },
    };
    if !symbols.iter().any(|s| s == symbol) {
        return Err(TopicError::UnknownSymbol(symbol.to_string()));
    }
    Ok((stream, symbol))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syms() -> Vec<String> {
        vec!["BTC-USD".into(), "ETH-USD".into()]
    }

    #[test]
    fn accepts_every_documented_stream() {
        let s = syms();
        assert_eq!(
            parse("BTC-USD@aggTrade", &s),
            Ok((Stream::AggTrade, "BTC-USD"))
        );
        assert_eq!(parse("ETH-USD@depth20", &s).unwrap().0, Stream::Depth(20));
        assert_eq!(
            parse("BTC-USD@bookTicker", &s).unwrap().0,
            Stream::BookTicker
        );
        assert_eq!(parse("BTC-USD@markPrice", &s).unwrap().0, Stream::MarkPrice);
        assert_eq!(
            parse("BTC-USD@forceOrder", &s).unwrap().0,
            Stream::ForceOrder
        );
        assert_eq!(parse("BTC-USD@kline_4h", &s).unwrap().0, Stream::Silent);
        assert_eq!(parse("!ticker@arr", &s).unwrap().0, Stream::Silent);
        assert_eq!(parse("4XN8@user.orders", &s).unwrap().0, Stream::UserOrders);
    }

    #[test]
    fn rejects_bad_format_and_unknown_symbols() {
        let s = syms();
        for bad in [
            "BTC-USD",
            "@aggTrade",
            "BTC-USD@",
            "BTC-USD@depth7",
            "BTC-USD@kline_2m",
            "x@arr",
        ] {
            assert_eq!(parse(bad, &s), Err(TopicError::Format), "{bad}");
        }
        assert_eq!(
            parse("FOO-USD@depth10", &s),
            Err(TopicError::UnknownSymbol("FOO-USD".into()))
        );
    }
}
