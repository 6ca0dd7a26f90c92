// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IParticipantRegistry, Roles} from "./interfaces/IParticipantRegistry.sol";
import {Operated} from "./base/Operated.sol";

/// @title ParticipantRegistry
/// @notice Who may act on the Anchorline ledger. The operator onboards organisations after KYC
/// with one or more roles (supplier, buyer, financier, auditor), and suspends or reinstates
/// them; every other contract asks it before letting an address act. Pausing it pauses the
/// whole platform: one switch, checked on the call every action makes anyway.
/// @dev Deployed as part of Financing, the contract that asks it most: four of the six steps of
/// an invoice's life (request, offer, accept, repay) then check their participants with
/// internal reads instead of a cold call to another contract (about 3,400 gas each). The
/// token and the receivable registry ask it through {IParticipantRegistry}, at Financing's
/// address.
abstract contract ParticipantRegistry is IParticipantRegistry, Operated, Pausable {
    /// @dev One slot per participant. When it was onboarded is in the ParticipantOnboarded
    /// event's block, not here: no contract reads it.
    struct Participant {
        uint32 id;
        uint8 roles;
        bool suspended;
    }

    mapping(address account => Participant) private _participants;
    mapping(uint32 id => address) private _accounts;
    /// @notice How many participants were ever onboarded (the last id given).
    uint32 public participantCount;

    event ParticipantOnboarded(address indexed account, uint32 indexed id, uint8 roles, bytes32 organisationRef);
    event ParticipantRolesChanged(address indexed account, uint8 previousRoles, uint8 roles);
    event ParticipantSuspended(address indexed account, bytes32 reasonCode);
    event ParticipantReinstated(address indexed account);

    error InvalidRoles(uint8 roles);
    error AlreadyOnboarded(address account);
    error NotOnboarded(address account);
    error AlreadySuspended(address account);
    error NotSuspended(address account);

    /// @notice Stops every gated action of every Anchorline contract until {unpause}.
    function pause() external onlyRole(OPERATOR_ROLE) {
        _pause();
    }

    /// @notice Lifts a {pause}.
    function unpause() external onlyRole(OPERATOR_ROLE) {
        _unpause();
    }

    /// @notice Onboards `account` (an organisation's signing address) with `roles`.
    /// @param organisationRef Off-chain reference of the organisation's KYC file (a hash, never
    /// personal data), so the ledger can be reconciled with the operator's records.
    function onboard(address account, uint8 roles, bytes32 organisationRef)
        external
        onlyRole(OPERATOR_ROLE)
        whenNotPaused
    {
        if (account == address(0)) revert ZeroAddress();
        _checkRoles(roles);
        if (_participants[account].id != 0) revert AlreadyOnboarded(account);
        uint32 id = ++participantCount;
        _participants[account] = Participant({id: id, roles: roles, suspended: false});
        _accounts[id] = account;
        emit ParticipantOnboarded(account, id, roles, organisationRef);
    }

    /// @notice Replaces the roles of an onboarded participant.
    function setRoles(address account, uint8 roles) external onlyRole(OPERATOR_ROLE) whenNotPaused {
        _checkRoles(roles);
        Participant storage participant = _onboarded(account);
        uint8 previous = participant.roles;
        participant.roles = roles;
        emit ParticipantRolesChanged(account, previous, roles);
    }

    /// @notice Suspends `account`: from now on every gated action by or towards it reverts.
    /// @param reasonCode The operator's reason (a code or the hash of a case reference).
    function suspend(address account, bytes32 reasonCode) external onlyRole(OPERATOR_ROLE) whenNotPaused {
        Participant storage participant = _onboarded(account);
        if (participant.suspended) revert AlreadySuspended(account);
        participant.suspended = true;
        emit ParticipantSuspended(account, reasonCode);
    }

    /// @notice Lifts a suspension.
    function reinstate(address account) external onlyRole(OPERATOR_ROLE) whenNotPaused {
        Participant storage participant = _onboarded(account);
        if (!participant.suspended) revert NotSuspended(account);
        participant.suspended = false;
        emit ParticipantReinstated(account);
    }

    /// @inheritdoc IParticipantRegistry
    function paused() public view override(IParticipantRegistry, Pausable) returns (bool) {
        return super.paused();
    }

    /// @inheritdoc IParticipantRegistry
    function isActive(address account, uint8 roleMask) external view returns (bool) {
        return _activeId(account, roleMask) != 0;
    }

    /// @inheritdoc IParticipantRegistry
    function activeId(address account, uint8 roleMask) external view whenNotPaused returns (uint32) {
        return _activeId(account, roleMask);
    }

    /// @inheritdoc IParticipantRegistry
    function activeIds(address first, uint8 firstMask, address second, uint8 secondMask)
        external
        view
        whenNotPaused
        returns (uint32 firstId, uint32 secondId)
    {
        return (_activeId(first, firstMask), _activeId(second, secondMask));
    }

    /// @inheritdoc IParticipantRegistry
    function accountOf(uint32 id) public view returns (address) {
        return _accounts[id];
    }

    /// @notice The stored record of `account` (all zero when it was never onboarded).
    function participantOf(address account) external view returns (Participant memory) {
        return _participants[account];
    }

    /// @return id The participant id of `account`, which must be active with a role in `roleMask`.
    function _requireParticipant(address account, uint8 roleMask) internal view whenNotPaused returns (uint32 id) {
        id = _activeId(account, roleMask);
        if (id == 0) revert ParticipantNotActive(account, roleMask);
    }

    /// @dev Both ends of a settlement, a repayment or a buy-back.
    function _requireParticipants(address first, uint8 firstMask, address second, uint8 secondMask)
        internal
        view
        returns (uint32 firstId, uint32 secondId)
    {
        firstId = _requireParticipant(first, firstMask);
        secondId = _requireParticipant(second, secondMask);
    }

    function _activeId(address account, uint8 roleMask) private view returns (uint32) {
        Participant memory participant = _participants[account];
        bool active = !participant.suspended && (roleMask == Roles.ANY || participant.roles & roleMask != 0);
        return active ? participant.id : 0;
    }

    function _checkRoles(uint8 roles) private pure {
        if (roles == 0 || roles & ~Roles.ALL != 0) revert InvalidRoles(roles);
    }

    function _onboarded(address account) private view returns (Participant storage participant) {
        participant = _participants[account];
        if (participant.id == 0) revert NotOnboarded(account);
    }
}
