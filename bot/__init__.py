"""shipbot: a Slack ChatOps bot for arm64 CodeBuild builds and EC2 deploys."""
