"""Nothing is silently ignored (issue 12): every keyword the schema knows is either
consumed by pykeepalived (the configuration checks or the runtime act on it) or declared
with `unsupported=`, which makes the parser report it as a note.

CONSUMED is the one place that says which keywords are acted on. It was built by grepping
the runtime and conf/ for each field's name (as `.name` or "name"), and checking by hand
those reached by name (the FIFO scripts, `f"{name}_script"`). Whoever implements a
keyword: drop its `unsupported=` note and add it here; whoever finds one here that nothing
reads: move it to a note.
"""

from __future__ import annotations

from conf.model import keywords_by_block
from conf.schema import KeywordSpec

# block label -> keywords acted on (the words split on white space)
_CONSUMED_TEXT: dict[str, str] = {
    "BFD_CHECK": """
        alpha name
    """,
    "DNS_CHECK": """
        alpha bind_if bind_port bindto connect_ip connect_port connect_timeout delay_before_retry delay_loop
        fwmark log_all_failures name retry type warmup
    """,
    "FILE_CHECK": """
        dynamic track_file weight
    """,
    "HTTP_GET": """
        alpha bind_if bind_port bindto connect_ip connect_port connect_timeout delay_before_retry delay_loop
        enable_sni fast_recovery fwmark http_protocol log_all_failures retry url virtualhost warmup
    """,
    "LvsTop": """
        SSL virtual_server virtual_server_group
    """,
    "MISC_CHECK": """
        alpha delay_before_retry delay_loop log_all_failures misc_dynamic misc_path misc_timeout retry user
        warmup
    """,
    "PING_CHECK": """
        alpha bind_if bind_port bindto connect_ip connect_port connect_timeout delay_before_retry delay_loop
        fwmark log_all_failures retry warmup
    """,
    "SMTP_CHECK": """
        alpha bind_if bind_port bindto connect_ip connect_port connect_timeout delay_before_retry delay_loop
        fwmark helo_name host log_all_failures retry warmup
    """,
    "SMTP_CHECK host": """
        alpha bind_if bind_port bindto connect_ip connect_port connect_timeout delay_before_retry delay_loop
        fwmark log_all_failures retry warmup
    """,
    "SSL": """
        ca certificate key password
    """,
    "SSL_GET": """
        alpha bind_if bind_port bindto connect_ip connect_port connect_timeout delay_before_retry delay_loop
        enable_sni fast_recovery fwmark http_protocol log_all_failures retry url virtualhost warmup
    """,
    "TCP_CHECK": """
        alpha bind_if bind_port bindto connect_ip connect_port connect_timeout delay_before_retry delay_loop
        fwmark log_all_failures retry warmup
    """,
    "UDP_CHECK": """
        alpha bind_if bind_port bindto connect_ip connect_port connect_timeout delay_before_retry delay_loop
        fwmark log_all_failures max_reply_length min_reply_length payload require_reply retry warmup
    """,
    "VrrpTop": """
        garp_group track_file vrrp_instance vrrp_script vrrp_sync_group vrrp_track_process
    """,
    "a checker": """
        alpha bind_if bind_port bindto connect_ip connect_port connect_timeout delay_before_retry delay_loop
        fwmark log_all_failures retry warmup
    """,
    "authentication": """
        auth_pass auth_type
    """,
    "garp_group": """
        garp_interval gna_interval interface interfaces
    """,
    "global_defs": """
        checker_log_all_failures checker_process_name data_use_instance default_interface dynamic_interfaces
        enable_script_security lvs_flush lvs_flush_on_stop lvs_notify_fifo lvs_notify_fifo_script
        max_auto_priority min_auto_priority_delay nftables nftables_counters nftables_ifindex
        nftables_priority no_checker_emails notification_email notification_email_from notify_fifo
        notify_fifo_script process_name process_names router_id rs_init_notifies script_user smtp_alert
        smtp_alert_checker smtp_alert_vrrp smtp_connect_timeout smtp_helo_name smtp_server umask
        vmac_addr_prefix vmac_prefix vrrp_check_unicast_src vrrp_down_timer_adverts vrrp_garp_extra_if
        vrrp_garp_interval vrrp_garp_lower_prio_delay vrrp_garp_lower_prio_repeat vrrp_garp_master_delay
        vrrp_garp_master_refresh vrrp_garp_master_refresh_repeat vrrp_garp_master_repeat vrrp_gna_interval
        vrrp_higher_prio_send_advert vrrp_lower_prio_no_advert vrrp_mcast_group4 vrrp_mcast_group6
        vrrp_min_garp vrrp_notify_fifo vrrp_notify_fifo_script vrrp_notify_priority_changes
        vrrp_process_name vrrp_skip_check_adv_addr vrrp_strict vrrp_version
        startup_script startup_script_timeout shutdown_script shutdown_script_timeout vrrp_startup_delay
        vrrp_priority checker_priority vrrp_no_swap checker_no_swap vrrp_cpu_affinity
        checker_cpu_affinity vrrp_rt_priority checker_rt_priority vrrp_rlimit_rttime
        checker_rlimit_rttime
    """,
    "real_server": """
        DNS_CHECK FILE_CHECK HTTP_GET MISC_CHECK PING_CHECK SMTP_CHECK SSL_GET TCP_CHECK UDP_CHECK alpha
        connect_timeout delay_before_retry delay_loop inhibit_on_failure lthreshold lvs_method notify_down
        notify_up retry smtp_alert uthreshold virtualhost warmup weight
    """,
    "the top level": """
        SSL child_wait_time garp_group global_defs instance interface_up_down_delays net_namespace
        static_ipaddress static_routes
        static_rules track_file track_group use_pid_dir virtual_server virtual_server_group vrrp_instance
        vrrp_script vrrp_sync_group vrrp_track_process
    """,
    "track_file": """
        file init_file weight
    """,
    "track_group": """
        group
    """,
    "url": """
        digest path regex regex_max_offset regex_min_offset regex_no_match regex_options regex_stack
        status_code virtualhost
    """,
    "virtual_server": """
        alpha connect_timeout delay_before_retry delay_loop flag-1 flag-2 flag-3 ha_suspend hashed
        hysteresis inhibit_on_failure ip_family lvs_method lvs_sched mh-fallback mh-port omega ops
        persistence_engine persistence_granularity persistence_timeout protocol quorum quorum_down quorum_up
        real_server retry sh-fallback sh-port smtp_alert sorry_server sorry_server_inhibit
        sorry_server_lvs_method virtualhost warmup weight
    """,
    "vrrp_instance": """
        accept advert_int authentication check_unicast_src debug dont_track_primary down_timer_adverts
        garp_extra_if garp_lower_prio_delay garp_lower_prio_repeat garp_master_delay garp_master_refresh
        garp_master_refresh_repeat garp_master_repeat higher_prio_send_advert interface lower_prio_no_advert
        mcast_dst_ip mcast_src_ip native_ipv6 no_accept nopreempt notify notify_backup notify_deleted notify_fault
        notify_master notify_master_rx_lower_pri notify_priority_changes notify_stop preempt preempt_delay
        priority promote_secondaries skip_check_adv_addr smtp_alert state strict_mode track_file
        track_interface track_process track_script track_src_ip unicast_peer unicast_src_ip unicast_ttl
        use_vmac version virtual_ipaddress virtual_ipaddress_excluded virtual_router_id virtual_routes
        virtual_rules vmac_xmit_base vrf
    """,
    "vrrp_script": """
        fall interval rise script timeout user weight
    """,
    "vrrp_sync_group": """
        global_tracking group notify notify_backup notify_fault notify_master notify_priority_changes
        notify_stop smtp_alert sync_group_tracking_weight track_file track_interface track_process
        track_script
    """,
    "vrrp_track_process": """
        delay fork_delay full_command param_match process quorum quorum_max terminate_delay weight
    """,
}

# Being implemented alongside this test (issue 12), by other hands: listed as consumed so
# that their notes can go; IN_PROGRESS says which, so it can be emptied when they land.
IN_PROGRESS: dict[str, str] = {}

# Consumed by design although no code reads it: keepalived 2.2.7 resets a tracked
# script's state to INIT whenever an instance tracks it (vrrp_child/tracking.py).
BY_DESIGN: dict[str, str] = {"vrrp_script": "init_fail"}

# Blocks reached only through a keyword that is itself a note (BFD): their keywords are
# covered by that note.
UNDER_A_NOTE = frozenset({"bfd_instance"})


def consumed() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for table in (_CONSUMED_TEXT, IN_PROGRESS, BY_DESIGN):
        for label, words in table.items():
            out.setdefault(label, set()).update(words.split())
    return out


def every_keyword() -> dict[str, dict[str, KeywordSpec]]:
    """block label -> keyword -> spec, over every Block class the model uses."""
    return keywords_by_block()


def test_every_keyword_is_consumed_or_noted() -> None:
    table = consumed()
    silent = [
        f"{label}: {word}"
        for label, keywords in sorted(every_keyword().items())
        if label not in UNDER_A_NOTE
        for word, spec in sorted(keywords.items())
        if not spec.unsupported and word not in table.get(label, set())
    ]
    assert silent == [], "parsed and dropped without a word: add an unsupported= note or list it in CONSUMED"


def test_consumed_keywords_exist_and_are_not_also_notes() -> None:
    known = every_keyword()
    stale = [
        f"{label}: {word}"
        for label, words in sorted(consumed().items())
        for word in sorted(words)
        if word not in known.get(label, {}) or known[label][word].unsupported
    ]
    assert stale == []
