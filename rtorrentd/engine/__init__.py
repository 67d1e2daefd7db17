"""Pure decisions: rules, derived values, memory, space policy, safety valves."""
