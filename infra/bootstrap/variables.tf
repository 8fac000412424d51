variable "name" {
  description = "Prefix of the state bucket's name; the same as the main configuration's name."
  type        = string
  default     = "flowlogs"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name))
    error_message = "name: 3 to 20 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the state bucket (the backend's region)."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", var.region))
    error_message = "region: an AWS region name such as eu-west-1."
  }
}

variable "state_versions_days" {
  description = "Days an overwritten state version is kept (to restore a state an apply broke)."
  type        = number
  default     = 90

  validation {
    condition     = var.state_versions_days >= 1
    error_message = "state_versions_days: 1 or more."
  }
}
