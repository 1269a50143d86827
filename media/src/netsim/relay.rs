//! UDP impairment relay (the tokio shell around [`super::model`]).
