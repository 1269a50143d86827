//! Seeded network impairment model and UDP impairment relay.
