"""Thin Slack and AWS event listeners: parse, decide in bot/, act through integrations/."""
