"""The 16 FAQ topics of docs/POLICY.md (shared by the response and evaluation-data tests)."""

FAQ_TOPICS = (
    "what_is_ketamine", "how_it_works", "conditions_treated", "candidacy", "safety", "side_effects", "addiction",
    "treatment_process", "administration", "esketamine", "preparation", "aftercare", "how_fast", "cost_insurance",
    "clinic_info", "consultation",
)
