//! Reading an [`Event`] from its flat attribute object in one pass. (A derived `Deserialize` with
//! `#[serde(flatten)]` buffers every attribute before it sorts them out; the relay reads every event
//! it publishes, so this is on its hot path.)

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use crate::Event;

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CloudEvent attribute object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let (mut id, mut source, mut ty) = (None, None, None);
        let mut e = Event::empty();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "id" => id = Some(map.next_value::<String>()?),
                "source" => source = Some(map.next_value::<String>()?),
                "type" => ty = Some(map.next_value::<String>()?),
                "subject" => e.subject = map.next_value()?,
                "time" => e.time = map.next_value()?,
                "datacontenttype" => e.datacontenttype = map.next_value()?,
                "dataschema" => e.dataschema = map.next_value()?,
                "tenant" => e.tenant = map.next_value()?,
                "correlationid" => e.correlationid = map.next_value()?,
                "causationid" => e.causationid = map.next_value()?,
                "traceparent" => e.traceparent = map.next_value()?,
                "tracestate" => e.tracestate = map.next_value()?,
                "replayof" => e.replayof = map.next_value()?,
                _ => {
                    let value: serde_json::Value = map.next_value()?;
                    e.extensions.insert(key, value);
                }
            }
        }
        e.id = id.ok_or_else(|| de::Error::missing_field("id"))?;
        e.source = source.ok_or_else(|| de::Error::missing_field("source"))?;
        e.ty = ty.ok_or_else(|| de::Error::missing_field("type"))?;
        Ok(e)
    }
}
